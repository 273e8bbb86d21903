"""The schemas are each key's one home: YAML files never restate a default, and the checks before launch are
generated from the schemas' rules."""

import dataclasses

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import CONF_DIR
from entrenar_bench.errors import ConfigError
from entrenar_bench.rules import RULE, RULE_WORDS, defaults, fields_of, nested_schema
from entrenar_bench.run.checks import validate_config
from entrenar_bench.run.schema import CONFIG, MOUNTED, RootSchema, rule_for

# What composes under each package before any YAML: the root's schema and each mounted group's.
MOUNTED_DEFAULTS = {**defaults(RootSchema), **{group: defaults(MOUNTED[group])
                                               for group in ("train", "teacher", "distill", "finetune", "optim")}}


def _package(path) -> str:
    """Where a conf file's body lands: the root for config.yaml and ``# @package _global_`` files, else its group."""
    text = path.read_text()
    if path.parent == CONF_DIR or "# @package _global_" in text.splitlines()[:1]:
        return ""
    return path.parent.relative_to(CONF_DIR).as_posix().replace("/", ".")


def _restated(body, schema_defaults, where: str, inherited=None):
    """Each leaf of ``body`` whose value is the schema's default at the same key (a bool is never a number),
    unless a preset it inherits (``inherited``) sets that key: then it undoes the preset."""
    for key, value in body.items():
        if key not in schema_defaults or key in ("defaults", "hydra"):
            continue
        default, path = schema_defaults[key], f"{where}{key}"
        preset = inherited.get(key) if isinstance(inherited, dict) else None
        if isinstance(value, dict) and isinstance(default, dict):
            yield from _restated(value, default, f"{path}.", preset)
        elif value == default and isinstance(value, bool) == isinstance(default, bool) and preset is None:
            yield f"{path}: {value!r}"


def _inherited(path) -> dict:
    """What the presets a file names in its defaults list (files of its own group) set, merged."""
    merged = {}
    for entry in (yaml.safe_load(path.read_text()) or {}).get("defaults", []):
        if isinstance(entry, str) and entry != "_self_" and not set(entry) & set("/@:"):
            parent = path.with_name(f"{entry}.yaml")
            merged = OmegaConf.to_container(OmegaConf.merge(merged, _inherited(parent), {
                k: v for k, v in (yaml.safe_load(parent.read_text()) or {}).items() if k != "defaults"}))
    return merged


def test_no_yaml_restates_a_schema_default():
    found = []
    for path in sorted(CONF_DIR.rglob("*.yaml")):
        body = yaml.safe_load(path.read_text()) or {}
        package = _package(path)
        node = MOUNTED_DEFAULTS
        for part in filter(None, package.split(".")):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            found += [f"{path.relative_to(CONF_DIR)}: {item}" for item in _restated(body, node, "", _inherited(path))]
    assert not found, "restated schema defaults (leave them to the schema, run/schema.py):\n" + "\n".join(found)


def test_the_check_finds_a_restated_default(tmp_path):
    body = yaml.safe_load("name: mse\ntemperature: 4.0\nalpha: 0.5\ntemperature_scaling: true\n")
    assert list(_restated(body, MOUNTED_DEFAULTS["distill"], "distill.")) == [
        "distill.temperature: 4.0", "distill.temperature_scaling: True"]
    assert list(_restated(body, MOUNTED_DEFAULTS["distill"], "distill.", {"temperature": 1.0})) == [
        "distill.temperature_scaling: True"]  # undoing a preset it inherits is not restating


def _rules(schema):
    for f in dataclasses.fields(schema):
        if RULE in f.metadata:
            yield f"{schema.__name__}.{f.name}", f.metadata[RULE]
        if (inner := nested_schema(fields_of(schema)[f.name][0])) is not None:
            yield from _rules(inner)


def test_every_rule_is_one_the_check_knows():
    known = set(RULE_WORDS) | {"bool"}
    for name, rule in _rules(CONFIG):
        integer = rule.startswith("int>=") and rule[5:].lstrip("-").isdigit() if isinstance(rule, str) else False
        assert isinstance(rule, tuple) or rule in known or integer, f"{name}: unknown rule {rule!r}"


def test_rule_for_reads_the_schema():
    assert rule_for("distill.temperature") == "number>0"
    assert rule_for("train.epochs") == "int>=1"
    assert rule_for("teacher.train.epochs") == "int>=0"  # 0 keeps a pretrained teacher as it is
    assert rule_for("finetune.base.seed") == "int>=0"
    assert rule_for("limits.max_runs") == "int>=1"
    assert rule_for("distill.name") is None and rule_for("nowhere.at_all") is None


@pytest.mark.parametrize("overrides, message", [
    (["train.epochs=0"], "train.epochs must be >= 1, got 0"),
    (["limits.max_runs=0"], "limits.max_runs must be >= 1"),
    (["seed=-1"], "seed must be >= 0"),
    (["save_student=maybe"], "save_student must be true or false"),
    (["optim.scheduler=sometimes"], "optim.scheduler must be one of cosine_epoch, cosine, linear, constant"),
    (["finetune.method=adapter"], "finetune.method must be one of none, full, lora"),
    (["finetune=lora", "finetune.alpha=0"], "finetune.alpha must be > 0"),
    (["finetune.base.epochs=-1"], "finetune.base.epochs must be >= 0"),
    (["distill.top_k_tail=cut"], "distill.top_k_tail must be one of bucket, drop, spread"),
    (["distill.sample_top_p=0"], "distill.sample_top_p must be in (0, 1]"),
    (["+distill.temprature=2"], "distill.temprature: no such setting"),
    (["data.batch_size=0"], "data.batch_size must be >= 1"),
    (["data.val_fraction=0.5", "data.test_fraction=0.5"], "data.val_fraction + data.test_fraction must be below 1"),
])
def test_a_value_out_of_its_schema_rule_is_refused_in_one_line(compose_cfg, overrides, message):
    with pytest.raises(ConfigError) as info:
        validate_config(compose_cfg(*overrides))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_values_within_the_rules_pass(compose_cfg):
    validate_config(compose_cfg("teacher.train.epochs=0", "finetune.base.epochs=0", "trainer.precision=32",
                                "limits.max_memory_gb=0.5", "threads=null"))
