"""Sweep commands as registered objects: each knows what it sweeps, its options and their defaults, how it
plans its overrides, and which report it gets. Adding a command is one object here (or in any module that
imports this one) plus its ``conf/bench/<name>.yaml``; the command line, the API and resume read the registry.

    register_command(ParameterSweep("beta", "distill.beta", help="Sweep GKD's beta", label="beta"))

A command's defaults have one home, the sweeper params of its bench YAML (what a plain Hydra ``+bench=<name>``
multirun sweeps): ``runs`` is the seed count, a parameter sweep's ``start``/``end``/``step`` its listed values,
a comparison's ``strategies`` its ``distill`` values, an ablation's ``components`` its single removals.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from entrenar_bench.errors import UsageError
from entrenar_bench.files import CONF_DIR
from entrenar_bench.run.ablation import COMPONENTS, FULL
from entrenar_bench.sweep import plan


@dataclass(frozen=True)
class Option:
    """One option of a command, as data (the command line makes the flag): ``kind`` is ``number``, ``list`` (comma
    separated) or ``overrides_file`` (a YAML of config values or overrides, read into overrides)."""

    name: str
    kind: str
    help: str
    metavar: str | None = None


@dataclass(frozen=True)
class SweepCommand(ABC):
    """A sweep command: ``name`` (the CLI's subcommand and ``conf/bench/<name>.yaml``), ``report`` (the report
    it gets: ``parameter``, ``compare`` or ``ablation``: aggregate/bench_reports.py)."""

    name: str
    help: str
    description: str
    report: str
    conf_file: Path | None = None  # its bench YAML; None: conf/bench/<name>.yaml

    @property
    @abstractmethod
    def swept_key(self) -> str:
        """The override the command varies: its groups (``--runs auto`` adds seeds to each)."""

    @property
    def bench_file(self) -> Path:
        return self.conf_file or CONF_DIR / "bench" / f"{self.name}.yaml"

    def sweeper_params(self) -> dict[str, list[str]]:
        return bench_params(self.bench_file)

    def defaults(self) -> dict[str, Any]:
        """``runs`` and the command's own options' defaults, read from its bench YAML."""
        return {"runs": len(self.sweeper_params()["seed"])}

    def options(self) -> list[Option]:
        return []

    @abstractmethod
    def plan(self, values: Mapping[str, Any], runs: int, teachers: int = 1) -> list[str]:
        """The overrides of the sweep for option ``values`` (missing ones: the defaults)."""

    def range_info(self, values: Mapping[str, Any]) -> dict | None:
        """What the report says of the planned range (a parameter sweep's start, end and step)."""
        return None


@functools.cache
def bench_params(path: Path) -> dict[str, list[str]]:
    """The sweeper params of a bench YAML, each a list of its comma-separated values."""
    params = yaml.safe_load(path.read_text())["hydra"]["sweeper"]["params"]
    return {key: str(value).split(",") for key, value in params.items()}


def bench_runs(name: str) -> int:
    """The seed count of ``conf/bench/<name>.yaml`` (a sweep that is not a registered command: cost-performance)."""
    return len(bench_params(CONF_DIR / "bench" / f"{name}.yaml")["seed"])


@dataclass(frozen=True)
class ParameterSweep(SweepCommand):
    """kd at each value of one setting ``key`` from ``--start`` to ``--end`` (inclusive) every ``--step``.
    ``label`` names the value in plots, ``header`` in the table, ``short`` in significance lines."""

    key: str = ""
    label: str = ""
    header: str = ""
    short: str = ""
    report: str = "parameter"

    def defaults(self) -> dict[str, Any]:
        points = [Decimal(v) for v in self.sweeper_params()[self.key]]
        step = float(points[1] - points[0]) if len(points) > 1 else 1.0
        return {**super().defaults(), "start": float(points[0]), "end": float(points[-1]), "step": step}

    @property
    def swept_key(self) -> str:
        return self.key

    def options(self) -> list[Option]:
        return [Option("start", "number", f"starting {self.name}"),
                Option("end", "number", f"ending {self.name}, inclusive"),
                Option("step", "number", f"{self.name} step size")]

    def plan(self, values: Mapping[str, Any], runs: int, teachers: int = 1) -> list[str]:
        v = {**self.defaults(), **{k: x for k, x in values.items() if x is not None}}
        points = plan.decimal_range(self.name, self.key, v["start"], v["end"], v["step"])
        return [*plan.seed_overrides(runs), *plan.teacher_overrides(teachers), f"{self.key}={','.join(points)}"]

    def range_info(self, values: Mapping[str, Any]) -> dict | None:
        v = {**self.defaults(), **{k: x for k, x in values.items() if x is not None}}
        return {"start": v["start"], "end": v["end"], "step": v["step"]}


@dataclass(frozen=True)
class StrategyComparison(SweepCommand):
    """Each strategy (``none`` = the student alone) with the same seeds."""

    report: str = "compare"
    swept_key = "distill"

    def defaults(self) -> dict[str, Any]:
        return {**super().defaults(), "strategies": self.sweeper_params()["distill"]}

    def options(self) -> list[Option]:
        return [Option("strategies", "list", "comma-separated strategies: "
                       f"{', '.join(plan.STRATEGIES)}, and {plan.BASELINE} (the student alone)")]

    def plan(self, values: Mapping[str, Any], runs: int, teachers: int = 1) -> list[str]:
        return plan.compare_overrides(values.get("strategies") or self.defaults()["strategies"], runs, teachers)


@dataclass(frozen=True)
class AblationStudy(SweepCommand):
    """The full objective, then each component and each pair of components removed; ``base``: overrides of
    the base configuration (``--base``)."""

    report: str = "ablation"
    swept_key = "ablate"

    def defaults(self) -> dict[str, Any]:
        removals = [v for v in self.sweeper_params()["ablate"] if v != FULL and "+" not in v]
        return {**super().defaults(), "components": removals}

    def options(self) -> list[Option]:
        return [Option("base", "overrides_file", "base configuration file (YAML of config values or overrides)",
                       metavar="CONFIG"),
                Option("components", "list", f"components to ablate: {', '.join(COMPONENTS)}")]

    def plan(self, values: Mapping[str, Any], runs: int, teachers: int = 1) -> list[str]:
        components = values.get("components") or self.defaults()["components"]
        return plan.ablation_overrides(components, runs, values.get("base") or (), teachers)


_COMMANDS: dict[str, SweepCommand] = {}


def register_command(command: SweepCommand) -> SweepCommand:
    """Add ``command`` to the registry (the command line and the API list it); a name taken is a ValueError."""
    if command.name in _COMMANDS and _COMMANDS[command.name] != command:
        raise ValueError(f"a sweep command named {command.name!r} is registered already")
    _COMMANDS[command.name] = command
    return command


def sweep_command(name: str) -> SweepCommand:
    """The registered command ``name``; UsageError naming the registered ones otherwise."""
    try:
        return _COMMANDS[name]
    except KeyError:
        raise UsageError(f"no sweep command {name!r}; registered: {', '.join(_COMMANDS)}") from None


def sweep_commands() -> Sequence[SweepCommand]:
    return tuple(_COMMANDS.values())


register_command(ParameterSweep("temperature", "Sweep temperature hyperparameter",
                                "Sweep temperature hyperparameter (kd; T² scaling).", key="distill.temperature",
                                label="temperature T", header="Temp", short="T"))
register_command(ParameterSweep("alpha", "Sweep alpha hyperparameter", "Sweep alpha hyperparameter (kd; T² scaling).",
                                key="distill.alpha", label="alpha", header="Alpha", short="alpha"))
register_command(StrategyComparison("compare", "Compare distillation strategies",
                                    "Compare distillation strategies head-to-head (Welch's t-test, Holm)."))
register_command(AblationStudy("ablation", "Run ablation study",
                               "Remove each component (and each pair) from the combined objective."))
