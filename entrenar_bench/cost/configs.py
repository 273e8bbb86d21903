"""Cost-performance configurations: a YAML list of named configurations, each a list of Hydra overrides.

    - name: LoRA r=8
      overrides: [finetune=lora, finetune.r=8]

Hydra's basic sweeper sweeps keys, not override lists, so each configuration becomes an option of
the ``cost_config`` config group: a ``# @package _global_`` file whose defaults list holds the
group overrides (``finetune=lora`` -> ``override /finetune: lora``) and whose body holds the value
overrides, plus ``configuration: <name>`` (the key runs are grouped by). One multirun then sweeps
``cost_config`` over the options and ``seed`` over the runs. The packaged options in
``conf/cost_config/`` are generated from ``configurations.yaml`` by ``python -m entrenar_bench.cost.configs``
(a test keeps them in sync); the CLI writes the options of the file it runs into the sweep directory.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf

from entrenar_bench.errors import UsageError
from entrenar_bench.files import CONF_DIR, read_yaml_option
from entrenar_bench.run.checks import validate_config
from entrenar_bench.sweep.compose import compose_config

DEFAULT_CONFIGS = Path(__file__).with_name("configurations.yaml")
GROUP = "cost_config"
BENCH = "cost_performance"
NAME_KEY = "configuration"


@dataclass(frozen=True)
class Configuration:
    name: str
    overrides: tuple[str, ...]

    @property
    def option(self) -> str:
        """The config-group option name: the name in lower case, runs of other characters as ``_``."""
        return re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_")


def read_configurations(path: Path | str = DEFAULT_CONFIGS) -> list[Configuration]:
    """Parse a configurations file; UsageError (one line) on a missing or malformed one."""
    where = f"--configs {path}"
    content = read_yaml_option(path, where)
    expected = "expected a list of {name: ..., overrides: [...]} entries"
    if not isinstance(content, list) or not content:
        raise UsageError(f"{where}: {expected}")
    configurations, options = [], {}
    for i, item in enumerate(content, 1):
        if (not isinstance(item, dict) or set(item) != {"name", "overrides"} or not isinstance(item["name"], str)
                or not item["name"].strip() or not isinstance(item["overrides"], list)
                or not all(isinstance(o, str) for o in item["overrides"])):
            raise UsageError(f"{where}: entry {i}: {expected}")
        configuration = Configuration(item["name"].strip(), tuple(item["overrides"]))
        if not configuration.option:
            raise UsageError(f"{where}: entry {i}: the name needs a letter or digit")
        if configuration.option in options:
            raise UsageError(f"{where}: entries {options[configuration.option]} and {i} have the same name "
                             f"({configuration.name!r})")
        options[configuration.option] = i
        configurations.append(configuration)
    return configurations


def parse_overrides(configuration: Configuration) -> list:
    """The configuration's overrides parsed by Hydra; only plain key=value and group=option ones."""
    try:
        parsed = OverridesParser.create().parse_overrides(list(configuration.overrides))
    except HydraException as e:
        raise UsageError(f"configuration {configuration.name!r}: bad override: {' '.join(str(e).split())}") from None
    for o in parsed:
        if o.is_sweep_override() or o.is_delete() or o.package is not None:
            raise UsageError(f"configuration {configuration.name!r}: bad override {o.input_line!r}: a configuration "
                             "takes plain key=value and group=option overrides (no sweeps, deletions or @packages)")
    return parsed


def check_configuration(configuration: Configuration, extra: Sequence[str] = ()) -> set[str]:
    """Compose and validate the configuration as a job would see it (with the study's ``extra`` overrides, e.g.
    ``+experiment=lm``); return the config groups it may select."""
    try:
        cfg = compose_config([f"+bench={BENCH}", *configuration.overrides, *extra], hydra_config=True)
        validate_config(cfg)
    except Exception as e:  # any composition or validation problem is the configuration's
        raise UsageError(f"configuration {configuration.name!r}: {e}") from None
    return set(cfg.hydra.runtime.choices)


def option_yaml(configuration: Configuration, source: str, extra: Sequence[str] = ()) -> str:
    """The ``cost_config`` option that applies this configuration's overrides (checked first, with ``extra``)."""
    parsed = parse_overrides(configuration)
    groups = check_configuration(configuration, extra)
    defaults: list = []
    values = OmegaConf.create({NAME_KEY: configuration.name})
    for o in parsed:
        if o.key_or_group in groups:
            defaults.append({(f"/{o.key_or_group}" if o.is_add() else f"override /{o.key_or_group}"): o.value()})
        else:
            OmegaConf.update(values, o.key_or_group, o.value(), merge=True, force_add=True)
    header = (f"# @package _global_\n# Configuration {configuration.name!r} from {source}; generated, do not edit.\n"
              f"# Overrides: {' '.join(configuration.overrides) or '(none)'}\n")
    return header + yaml.safe_dump({"defaults": [*defaults, "_self_"]}, sort_keys=False) + OmegaConf.to_yaml(values)


def option_texts(configurations: Sequence[Configuration], source: str, prefix: str = "",
                 extra: Sequence[str] = ()) -> dict[str, str]:
    """Check each configuration (with the study's ``extra`` overrides) and make its option: ``{option name: YAML
    text}``, in order."""
    return {f"{prefix}{c.option}": option_yaml(c, source, extra) for c in configurations}


def write_options(texts: dict[str, str], directory: Path) -> list[str]:
    """Write options made by :func:`option_texts` to ``directory/cost_config/``; return their names."""
    group = directory / GROUP
    group.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (group / f"{name}.yaml").write_text(text)
    return list(texts)


def main() -> None:
    """Regenerate the packaged options from the default configurations file."""
    source = f"entrenar_bench/cost/{DEFAULT_CONFIGS.name}"
    names = write_options(option_texts(read_configurations(), source), CONF_DIR)
    print(f"wrote {len(names)} options to {CONF_DIR / GROUP}: {', '.join(names)}")


if __name__ == "__main__":
    main()
