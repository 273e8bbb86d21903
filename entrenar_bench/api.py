"""The programmatic API: plan a sweep, run it as a Hydra multirun, report from its run directories, export
the best student.

    from entrenar_bench import temperature_sweep
    result = temperature_sweep((1.0, 8.0), 0.5, 3)
    print(result.best_param)

``metric`` (every function): the metric that decides (aggregate/metrics.py); None: the runs' primary metric.

The ``entrenar-bench`` commands are a thin layer over these functions; defaults come from
``conf/bench/<name>.yaml`` (:func:`entrenar_bench.sweep.plan.bench_defaults`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entrenar_bench.aggregate.metrics import check_name
from entrenar_bench.aggregate.sequential_design import Design
from entrenar_bench.errors import NoResults, UsageError
from entrenar_bench.sweep.launch import run_sweep
from entrenar_bench.sweep.plan import (
    ablation_overrides,
    bench_defaults,
    compare_overrides,
    mapping_to_overrides,
    param_sweep_overrides,
)

# The statistics and plotting stack (pandas, scipy, statsmodels, matplotlib: ~2.5 s of imports) is
# loaded by report(), so the CLI starts a sweep without it and loads it while the jobs run.
REPORT_MODULES = ("entrenar_bench.aggregate.collect", "entrenar_bench.aggregate.bench_reports",
                  "entrenar_bench.aggregate.tracking")


@dataclass
class SweepResult:
    sweep_type: str
    sweep_dir: Path
    document: dict[str, Any]
    text: str
    unwritten: tuple[str, ...] = ()  # outputs (plots) that could not be written, and why

    @property
    def best_param(self) -> Any:
        """Best temperature/alpha value, best strategy, or best ablation configuration."""
        best = self.document.get("best") or {}
        return self.document.get(f"best_{self.sweep_type}", best.get("strategy", best.get("configuration")))


def report(sweep_type: str, sweep_dir: Path, range_info: dict | None = None, metric: str | None = None
           ) -> SweepResult:
    """Aggregate a finished (or partly finished) sweep directory into the command's report, judged on ``metric``.
    A metric the runs did not record is a UsageError that names the recorded ones and keeps the sweep."""
    from entrenar_bench.aggregate.bench_reports import ablation_report, compare_report, param_sweep_report
    from entrenar_bench.aggregate.collect import SweepError, collect
    from entrenar_bench.aggregate.tracking import log_report

    reports = {
        "temperature": lambda c, info: param_sweep_report(c, "temperature", info),
        "alpha": lambda c, info: param_sweep_report(c, "alpha", info),
        "compare": lambda c, info: compare_report(c),
        "ablation": lambda c, info: ablation_report(c),
    }
    try:
        collection = collect(sweep_dir, metric)
    except SweepError as e:
        raise UsageError(str(e)) from None
    except UsageError as e:
        raise UsageError(f"{e} (the sweep is kept: entrenar-bench aggregate {sweep_dir} --metric NAME)") from None
    if collection.completed.empty:
        reasons = {str(e) for e in collection.runs.get("error", []) if isinstance(e, str)}
        raise NoResults(f"no run completed in {sweep_dir} ({'; '.join(sorted(reasons))[:300] or 'see sweep.log'})")
    document, text = reports[sweep_type](collection, range_info)
    untracked = log_report(Path(sweep_dir), document, text)  # to the sweep's MLflow parent run, if it has one
    return SweepResult(sweep_type, Path(sweep_dir), document, text, (*collection.unwritten, *untracked))


SWEPT_KEYS = {"temperature": "distill.temperature", "alpha": "distill.alpha", "compare": "distill",
              "ablation": "ablate"}  # the override each sweep type varies: its groups in an auto sweep


def auto_sweep(sweep_type: str, overrides: Sequence[str] = (), design: Design | None = None,
               range_info: dict | None = None, metric: str | None = None, resume: Path | str | None = None
               ) -> SweepResult:
    """``--runs auto``: the ``sweep_type`` sweep planned by ``overrides`` (one seed: the rounds set the seeds) run
    in rounds until every comparison has stopped or ``design.max_runs`` is reached (aggregate/sequential.py,
    sweep/sequential.py); or, with ``resume``, the auto sweep in that directory continued as recorded. The
    report gains ``sequential``: where and why each comparison stopped, and the runs saved."""
    from entrenar_bench.aggregate.sequential_report import baseline_of, decider, sequential_section
    from entrenar_bench.sweep.sequential import RoundPlan, read_round_plan, run_rounds, swept_values

    if metric is not None:
        check_name(metric)
    if resume is not None:
        plan = read_round_plan(resume, sweep_type)
        design = Design.from_dict(plan.design)
    else:
        design = (design or Design(max_runs=bench_defaults(sweep_type)["runs"])).check()
        key = SWEPT_KEYS[sweep_type]
        plan = RoundPlan(sweep_type, key, swept_values(overrides, key), list(overrides), design.looks, 1,
                         design.as_dict())
    baseline = baseline_of(sweep_type, plan.values)
    sweep_dir = run_rounds(plan, decider(design, plan.key, plan.values, baseline, metric),
                           None if resume is None else Path(resume).resolve(), preload=REPORT_MODULES)
    result = report(sweep_type, sweep_dir, range_info, metric)
    result.document["sequential"], lines, unwritten = sequential_section(sweep_dir, sweep_type, design, plan.key,
                                                                         plan.values, metric)
    result.text = "\n".join([result.text, *lines])
    result.unwritten = (*result.unwritten, *unwritten)
    return result


def _run(sweep_type: str, overrides: list[str], range_info: dict | None = None, metric: str | None = None,
         sequential: Design | None = None) -> SweepResult:
    if sequential is not None:
        return auto_sweep(sweep_type, overrides, sequential, range_info, metric)
    if metric is not None:
        check_name(metric)  # its form before anything runs; whether the runs record it once they exist
    return report(sweep_type, run_sweep(sweep_type, overrides, preload=REPORT_MODULES), range_info, metric)


def _param_sweep(name: str, range: tuple[float, float] | None, step: float | None, runs: int | None,
                 overrides: Sequence[str], teachers: int, metric: str | None, sequential: Design | None
                 ) -> SweepResult:
    defaults = bench_defaults(name)
    start, end = range if range is not None else (defaults["start"], defaults["end"])
    step = defaults["step"] if step is None else step
    runs = 1 if sequential else defaults["runs"] if runs is None else runs
    planned = param_sweep_overrides(name, start, end, step, runs, teachers)
    return _run(name, [*planned, *overrides], {"start": start, "end": end, "step": step}, metric, sequential)


def temperature_sweep(range: tuple[float, float] | None = None, step: float | None = None, runs: int | None = None,
                      overrides: Sequence[str] = (), teachers: int = 1, metric: str | None = None,
                      sequential: Design | None = None) -> SweepResult:
    """kd at each temperature in ``range`` (inclusive) every ``step``, ``runs`` seeds each
    (defaults: conf/bench/temperature.yaml, 1.0 to 8.0 by 0.5, 3 seeds); ``teachers`` K crosses K teachers
    (teacher seeds 0..K-1) with the seeds, and the tests treat the teacher as a random factor. ``sequential``:
    ``--runs auto``, seeds added in rounds and points worse than the best dropped (``runs`` is then ignored)."""
    return _param_sweep("temperature", range, step, runs, overrides, teachers, metric, sequential)


def alpha_sweep(range: tuple[float, float] | None = None, step: float | None = None, runs: int | None = None,
                overrides: Sequence[str] = (), teachers: int = 1, metric: str | None = None,
                sequential: Design | None = None) -> SweepResult:
    """kd at each alpha in ``range`` (inclusive) every ``step``, ``runs`` seeds each
    (defaults: conf/bench/alpha.yaml, 0.0 to 1.0 by 0.1, 3 seeds); ``teachers`` as for temperature_sweep."""
    return _param_sweep("alpha", range, step, runs, overrides, teachers, metric, sequential)


def compare_strategies(strategies: Sequence[str] | None = None, runs: int | None = None,
                       overrides: Sequence[str] = (), teachers: int = 1, metric: str | None = None,
                       sequential: Design | None = None) -> SweepResult:
    """Each strategy (``none`` = the student alone) with ``runs`` seeds; Welch + Holm across pairs
    (defaults: conf/bench/compare.yaml, the five strategies, 5 seeds); ``teachers`` as for temperature_sweep;
    ``sequential``: ``--runs auto``, each strategy against ``none`` (else the first) in rounds."""
    defaults = bench_defaults("compare")
    runs = 1 if sequential else runs or defaults["runs"]
    planned = compare_overrides(strategies or defaults["strategies"], runs, teachers)
    return _run("compare", [*planned, *overrides], metric=metric, sequential=sequential)


def ablation_study(components: Sequence[str] | None = None, runs: int | None = None,
                   base: Mapping[str, Any] | None = None, overrides: Sequence[str] = (), teachers: int = 1,
                   metric: str | None = None, sequential: Design | None = None) -> SweepResult:
    """The full objective, then each component and each pair of components removed
    (defaults: conf/bench/ablation.yaml, every component, 3 seeds); ``teachers`` as for temperature_sweep;
    ``sequential``: ``--runs auto``, each variant against the full objective in rounds."""
    defaults = bench_defaults("ablation")
    runs = 1 if sequential else runs or defaults["runs"]
    planned = ablation_overrides(components or defaults["components"], runs, mapping_to_overrides(base or {}), teachers)
    return _run("ablation", [*planned, *overrides], metric=metric, sequential=sequential)


def export_student(sweep_dir: Path | str, to: Path | str, group: str | None = None, metric: str | None = None
                   ) -> Path:
    """Write the selected (or named) group's best run's student to ``to`` with its tokenizer and a model card
    (aggregate/export.py); UsageError (one line) for anything that cannot be exported. Returns ``to``."""
    from entrenar_bench.aggregate.export import export

    return export(Path(sweep_dir), Path(to), group, metric).target
