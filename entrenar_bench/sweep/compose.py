"""Compose and expand: one adapter over Hydra's compose API and its basic sweeper, used by the
command line (to check every job before anything runs) and by aggregation (to know which jobs a
sweep asked for)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from hydra import compose, initialize_config_dir
# Private, for want of a public one: Hydra exposes no API that expands sweep overrides into the jobs its basic
# sweeper would launch (split_arguments), and the checks before launch must see exactly those jobs.
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, Override, RangeSweep
from hydra.core.plugins import Plugins
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from entrenar_bench.errors import UsageError
from entrenar_bench.files import CONF_DIR, load_yaml
from entrenar_bench.run import placement, schema  # noqa: F401  (register the launcher resolvers; the schemas)
from entrenar_bench.run.checks import validate_config

OVERRIDE = "override /hydra/launcher"


def launcher_plugin(name: str) -> tuple[str | None, str | None]:
    """The Hydra launcher plugin that ``conf/launcher/<name>.yaml`` selects (``override /hydra/launcher: X``) and
    the pip extra that installs it (its ``launcher.extra``); (None, None) for no such file."""
    path = CONF_DIR / "launcher" / f"{name}.yaml"
    if not re.fullmatch(r"[\w-]+", name) or not path.is_file():
        return None, None
    content = load_yaml(path.read_text()) or {}
    plugin = next((entry[OVERRIDE] for entry in content.get("defaults") or [] if isinstance(entry, dict)
                   and OVERRIDE in entry), None)
    return plugin, (content.get("launcher") or {}).get("extra")


def plugin_installed(plugin: str, group: str = "hydra/launcher") -> bool:
    """Hydra found the plugin: installed plugins register their configs in the ConfigStore when scanned."""
    Plugins.instance()
    return f"{plugin}.yaml" in ConfigStore.instance().list(group)


def check_launchers(overrides: Sequence) -> None:
    """A ``launcher=NAME`` whose Hydra plugin is not installed: one line naming the extra to install."""
    for override in overrides:
        if override.key_or_group != "launcher" or override.is_delete():
            continue
        values = override.sweep_string_iterator() if override.is_sweep_override() else [override.value()]
        for name in values:
            plugin, extra = launcher_plugin(str(name))
            if plugin and not plugin_installed(plugin):
                install = f"pip install 'entrenar-bench[{extra}]'" if extra else f"install Hydra's {plugin} launcher"
                raise UsageError(f"launcher={name} needs the [{extra or plugin}] extra: {install}")


def _bad_override(e: Exception) -> UsageError:
    return UsageError(f"bad override: {' '.join(str(e).split())}")


def compose_config(overrides: Sequence[str], hydra_config: bool = False) -> DictConfig:
    """Compose ``conf/config.yaml`` with overrides, as the app would; UsageError on any problem."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return compose("config", overrides=list(overrides), return_hydra_config=hydra_config)
    except (HydraException, OmegaConfBaseException) as e:
        raise _bad_override(e) from None
    finally:
        GlobalHydra.instance().clear()


def expand_jobs(overrides: Sequence[str]) -> tuple[list[list[str]], DictConfig]:
    """Every job's overrides, expanded as Hydra's basic sweeper does (sweeper params, then ours),
    and the composed config of the first job (with its ``hydra`` node)."""
    parser = OverridesParser.create()
    try:
        check_launchers(parser.parse_overrides(list(overrides)))
        first = [
            f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}" if o.is_sweep_override() else o.input_line
            for o in parser.parse_overrides(list(overrides))
        ]
        cfg = compose_config(first, hydra_config=True)
        jobs = sweep_jobs(cfg.hydra.sweeper.get("params") or {}, overrides, max_runs(overrides))
    except HydraException as e:
        raise _bad_override(e) from None
    return jobs, cfg


def max_runs(overrides: Sequence[str] = ()) -> int:
    """``limits.max_runs``, the most jobs one sweep may have: the last ``limits.max_runs=N`` override, else
    the schema's. Read without composing, so a sweep too large to parse is refused before it is."""
    for override in reversed(list(overrides)):
        match = re.fullmatch(r"\+{0,2}limits\.max_runs=(\d+)", override.strip())
        if match:
            return int(match[1])
    return schema.LimitsSchema.max_runs


def count_values(override: Override) -> int:
    """How many values an override sweeps over (1 if it sets one), without listing a range."""
    if not override.is_sweep_override():
        return 1
    value = override.value()
    if isinstance(value, RangeSweep):
        if not value.step:
            raise HydraException(f"{override.input_line}: a range with step 0")
        return max(0, math.ceil((value.stop - value.start) / value.step))
    return len(value.list) if isinstance(value, ChoiceSweep) else 1


def count_jobs(overrides: Sequence[Override]) -> int:
    """Jobs in the product the basic sweeper forms (a later override of a key replaces an earlier one), or
    the values of the longest sweep if more: the basic sweeper lists every sweep, even one replaced later."""
    counts = [(o.get_key_element(), count_values(o)) for o in overrides]
    return max(math.prod(dict(counts).values()), max((n for _, n in counts), default=1))


def sweep_jobs(params: Mapping[str, Any], overrides: Sequence[str], limit: int | None = None) -> list[list[str]]:
    """Every job's overrides, in Hydra's order: the sweeper's ``params`` first, then ``overrides``,
    split as the basic sweeper splits them (HydraException on a bad override). More than ``limit`` jobs is a
    UsageError, found by counting before anything is expanded."""
    arguments = [f"{k}={v}" for k, v in params.items()] + list(overrides)
    parsed = OverridesParser.create().parse_overrides(arguments)
    if limit is not None and (count := count_jobs(parsed)) > limit:
        raise UsageError(f"{count} runs in one sweep is more than limits.max_runs={limit}; "
                         "sweep fewer runs or points (or raise it: -- limits.max_runs=N)")
    batches = BasicSweeper.split_arguments(parsed, None)
    return [job for batch in batches for job in batch]


def check_planned_memory(cfg: DictConfig) -> None:
    """The job's estimated peak memory against its limits (``run/memory_budget.py``), built as the job builds its
    models: loads Lightning and the models, so only where a limit is set."""
    from entrenar_bench.run.app import distill_settings
    from entrenar_bench.run.job import planned_memory

    planned_memory(cfg, distill_settings(cfg))


def check_jobs(jobs: Sequence[Sequence[str]]) -> None:
    """Compose and validate each distinct job config, so a bad value stops the sweep before it starts; with
    ``limits.max_memory_gb`` (``--max-memory``), estimate its memory too.

    Jobs that differ only in an integer seed share a config; one of them stands for all.
    """
    seen = set()
    for job in jobs:
        others = tuple(o for o in job if not o.startswith("seed="))
        seed = next((o.split("=", 1)[1] for o in job if o.startswith("seed=")), "0")
        if others in seen and seed.isdigit():
            continue
        seen.add(others)
        try:
            cfg = compose_config(job)
            validate_config(cfg)
            if cfg.limits.get("max_memory_gb") is not None:
                check_planned_memory(cfg)
        except UsageError:
            raise
        except Exception as e:
            raise UsageError(str(e)) from None
