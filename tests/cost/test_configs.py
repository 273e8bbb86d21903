"""Configurations files -> cost_config group options, and the packaged default study."""

import pytest
import yaml
from omegaconf import OmegaConf

from entrenar_bench.sweep.compose import CONF_DIR, compose_config
from entrenar_bench.errors import UsageError
from entrenar_bench.cost.configs import (
    DEFAULT_CONFIGS,
    GROUP,
    Configuration,
    option_texts,
    read_configurations,
    write_options,
)


def test_packaged_options_are_generated_from_the_default_file(tmp_path):
    configurations = read_configurations()
    assert [c.name for c in configurations] == ["LoRA r=8", "LoRA r=16", "LoRA r=32", "LoRA r=64", "Full fine-tune"]
    names = write_options(option_texts(configurations, f"entrenar_bench/cost/{DEFAULT_CONFIGS.name}"), tmp_path)
    for name in names:  # regenerate with `python -m entrenar_bench.cost.configs` when this fails
        assert (tmp_path / GROUP / f"{name}.yaml").read_text() == (CONF_DIR / GROUP / f"{name}.yaml").read_text()
    bench = yaml.safe_load((CONF_DIR / "bench" / "cost_performance.yaml").read_text())
    assert bench["hydra"]["sweeper"]["params"]["cost_config"] == ",".join(names)


def test_an_option_composes_like_its_overrides(tmp_path):
    configuration = Configuration("mixed", ("finetune=lora", "finetune.r=4", "train.lr=1e-3", "distill=mse",
                                            "+extra.note=hello", "student.model.channels=[4,8]"))
    [name] = write_options(option_texts([configuration], "test", prefix="t_"), tmp_path)
    def strip(cfg):
        return {k: v for k, v in OmegaConf.to_container(cfg).items() if k != "configuration"}

    via_option = compose_config(["+bench=cost_performance", f"cost_config={name}",
                                 f"hydra.searchpath=[file://{tmp_path}]"])
    direct = compose_config(["+bench=cost_performance", *configuration.overrides])
    assert strip(via_option) == strip(direct) and via_option.configuration == "mixed"


@pytest.mark.parametrize("text, message", [
    ("- name: a\n  overrides: [x=1\n", "not valid YAML"),
    ("name: a\n", "expected a list of {name: ..., overrides: [...]} entries"),
    ("[]\n", "expected a list"),
    ("- name: a\n  overrides: finetune=lora\n", "entry 1: expected a list"),
    ("- name: a\n  overrides: []\n  extra: 1\n", "entry 1"),
    ("- name: LoRA\n  overrides: []\n- name: lora\n  overrides: []\n", "entries 1 and 2 have the same name"),
])
def test_malformed_files(tmp_path, text, message):
    path = tmp_path / "configs.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("{", r"\{")):
        read_configurations(path)


@pytest.mark.parametrize("overrides, message", [
    (["finetune.rank=8"], "configuration 'bad': bad override"),
    (["finetune=adapter"], "configuration 'bad': bad override"),
    (["finetune=lora", "finetune.r=0"], "finetune.r must be >= 1"),
    (["train.epochs=1,2"], "bad override"),
    (["~train.lr"], "bad override"),
])
def test_bad_configurations(tmp_path, overrides, message):
    with pytest.raises(UsageError, match=message):
        option_texts([Configuration("bad", tuple(overrides))], "test")
