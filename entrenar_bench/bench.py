"""The sweeps as a library: plan the overrides, run the multirun, report from the run directories.

    from entrenar_bench import temperature_sweep
    result = temperature_sweep((1.0, 8.0), 0.5, 3)
    print(result.best_param)

The ``entrenar-bench`` commands are a thin layer over these functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from itertools import combinations
from pathlib import Path
from typing import Any

from entrenar_bench.cli.errors import NoResults, UsageError
from entrenar_bench.cli.launch import quote_value, run_sweep
from entrenar_bench.distill.ablation import COMPONENTS, FULL, ablate_value
from entrenar_bench.distill.settings import STRATEGY_ORDER

# The statistics and plotting stack (pandas, scipy, statsmodels, matplotlib: ~2.5 s of imports) is
# loaded by report(), so the CLI starts a sweep without it and loads it while the jobs run.
REPORT_MODULES = ("entrenar_bench.aggregate.collect", "entrenar_bench.aggregate.bench_reports")

STRATEGIES = STRATEGY_ORDER[:-1]
BASELINE = STRATEGY_ORDER[-1]
MAX_POINTS = 1000
LIMITS = {"temperature": (Decimal(0), None), "alpha": (Decimal(0), Decimal(1))}  # temperature > 0, alpha in [0, 1]


@dataclass
class SweepResult:
    sweep_type: str
    sweep_dir: Path
    document: dict[str, Any]
    text: str

    @property
    def best_param(self) -> Any:
        """Best temperature/alpha value, best strategy, or best ablation configuration."""
        best = self.document.get("best") or {}
        return self.document.get(f"best_{self.sweep_type}", best.get("strategy"))


def decimal_range(name: str, start: float, end: float, step: float) -> list[str]:
    """``start, start+step, ..., end`` inclusive, in exact decimal steps (0.1 steps give 0.3, never
    0.30000000000000004); values as Hydra override text."""
    try:
        lo, hi, by = (Decimal(str(v)) for v in (start, end, step))
    except InvalidOperation:
        raise UsageError("--start, --end and --step must be numbers") from None
    if not by.is_finite() or by <= 0:
        raise UsageError(f"--step must be > 0, got {step}")
    if hi < lo:
        raise UsageError(f"--end ({end}) must not be below --start ({start})")
    minimum, maximum = LIMITS[name]
    if (lo <= minimum if name == "temperature" else lo < minimum) or (maximum is not None and hi > maximum):
        bound = "> 0" if name == "temperature" else "between 0 and 1"
        raise UsageError(f"{name} values must be {bound}; got --start {start} --end {end}")
    count = int((hi - lo) / by) + 1
    if count > MAX_POINTS:
        raise UsageError(f"{count} {name} points is too many (at most {MAX_POINTS}); use a larger --step")
    values = [lo + i * by for i in range(count)]
    return [format(v, "f") if "." in format(v, "f") else f"{v}.0" for v in values]


def seed_overrides(runs: int) -> list[str]:
    """The seeds of each point. Planned first, so they vary slowest (Hydra's sweep order is the product
    of the overrides, the last varying fastest): every point gets its first seed before any its second,
    so a sweep stopped early covers every point, and parallel workers end on a mix of points rather
    than on the seeds of the slowest strategy."""
    if not isinstance(runs, int) or runs < 1:
        raise UsageError(f"--runs must be a positive integer, got {runs}")
    return [f"seed={','.join(str(s) for s in range(runs))}"]


def param_sweep_overrides(name: str, start: float, end: float, step: float, runs: int) -> list[str]:
    return [*seed_overrides(runs), f"distill.{name}={','.join(decimal_range(name, start, end, step))}"]


def compare_overrides(strategies: Iterable[str], runs: int) -> list[str]:
    chosen = list(dict.fromkeys(s.strip() for s in strategies if s.strip()))
    known = (*STRATEGIES, BASELINE)
    unknown = [s for s in chosen if s not in known]
    if unknown or not chosen:
        raise UsageError(f"unknown strategy {', '.join(map(repr, unknown)) or '(none given)'}; known: {', '.join(known)}")
    return [*seed_overrides(runs), f"distill={','.join(chosen)}"]


def ablation_variants(components: Iterable[str]) -> list[str]:
    """full, each component removed, each pair removed — as ``ablate`` values."""
    chosen = list(dict.fromkeys(c.strip() for c in components if c.strip()))
    unknown = [c for c in chosen if c not in COMPONENTS]
    if unknown or not chosen:
        raise UsageError(f"unknown component {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"known: {', '.join(COMPONENTS)}")
    removed = [[c] for c in chosen] + [list(p) for p in combinations(chosen, 2)]
    return [FULL, *(ablate_value(r) for r in removed)]


def _override_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(_override_value(v) for v in value) + "]"
    return quote_value(str(value))


def mapping_to_overrides(mapping: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``{"distill": "combined", "train": {"epochs": 50}}`` -> ``["distill=combined", "train.epochs=50"]``."""
    out = []
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            out += mapping_to_overrides(value, f"{prefix}{key}.")
        else:
            out.append(f"{prefix}{key}={_override_value(value)}")
    return out


def ablation_overrides(components: Iterable[str], runs: int, base: Sequence[str] = ()) -> list[str]:
    return [*base, *seed_overrides(runs), f"ablate={','.join(ablation_variants(components))}"]


def report(sweep_type: str, sweep_dir: Path, range_info: dict | None = None) -> SweepResult:
    """Aggregate a finished (or partly finished) sweep directory into the command's report."""
    from entrenar_bench.aggregate.bench_reports import ablation_report, compare_report, param_sweep_report
    from entrenar_bench.aggregate.collect import SweepError, collect

    reports = {
        "temperature": lambda c, info: param_sweep_report(c, "temperature", info),
        "alpha": lambda c, info: param_sweep_report(c, "alpha", info),
        "compare": lambda c, info: compare_report(c),
        "ablation": lambda c, info: ablation_report(c),
    }
    try:
        collection = collect(sweep_dir)
    except SweepError as e:
        raise UsageError(str(e)) from None
    if collection.completed.empty:
        reasons = {str(e) for e in collection.runs.get("error", []) if isinstance(e, str)}
        raise NoResults(f"no run completed in {sweep_dir} ({'; '.join(sorted(reasons))[:300] or 'see sweep.log'})")
    document, text = reports[sweep_type](collection, range_info)
    return SweepResult(sweep_type, Path(sweep_dir), document, text)


def _run(sweep_type: str, overrides: list[str], range_info: dict | None = None) -> SweepResult:
    return report(sweep_type, run_sweep(sweep_type, overrides, preload=REPORT_MODULES), range_info)


def temperature_sweep(range: tuple[float, float] = (1.0, 8.0), step: float = 0.5, runs: int = 3,
                      overrides: Sequence[str] = ()) -> SweepResult:
    """kd at each temperature in ``range`` (inclusive) every ``step``, ``runs`` seeds each."""
    planned = param_sweep_overrides("temperature", *range, step, runs)
    return _run("temperature", [*planned, *overrides], {"start": range[0], "end": range[1], "step": step})


def alpha_sweep(range: tuple[float, float] = (0.0, 1.0), step: float = 0.1, runs: int = 3,
                overrides: Sequence[str] = ()) -> SweepResult:
    """kd at each alpha in ``range`` (inclusive) every ``step``, ``runs`` seeds each."""
    planned = param_sweep_overrides("alpha", *range, step, runs)
    return _run("alpha", [*planned, *overrides], {"start": range[0], "end": range[1], "step": step})


def compare_strategies(strategies: Sequence[str] = STRATEGIES, runs: int = 5,
                       overrides: Sequence[str] = ()) -> SweepResult:
    """Each strategy (``none`` = the student alone) with ``runs`` seeds; Welch + Holm across pairs."""
    return _run("compare", [*compare_overrides(strategies, runs), *overrides])


def ablation_study(components: Sequence[str] = tuple(COMPONENTS), runs: int = 3, base: Mapping[str, Any] | None = None,
                   overrides: Sequence[str] = ()) -> SweepResult:
    """The full objective, then each component and each pair of components removed."""
    planned = ablation_overrides(components, runs, mapping_to_overrides(base or {}))
    return _run("ablation", [*planned, *overrides])
