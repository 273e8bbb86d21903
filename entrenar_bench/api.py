"""The programmatic API: plan a sweep, run it as a Hydra multirun, report from its run directories, export
the best student.

    from entrenar_bench import temperature_sweep
    result = temperature_sweep((1.0, 8.0), 0.5, 3)
    print(result.best_param)

``metric`` (every function): the metric that decides (aggregate/metrics.py); None: the runs' primary metric.

The ``entrenar-bench`` sweep commands are a thin layer over :func:`run_command`: each is a registered
:class:`~entrenar_bench.sweep.commands.SweepCommand` that plans its overrides (defaults from its
``conf/bench/<name>.yaml``) and names its report.
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
from entrenar_bench.sweep.commands import sweep_command
from entrenar_bench.sweep.plan import mapping_to_overrides

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
    from entrenar_bench.aggregate.bench_reports import command_report
    from entrenar_bench.aggregate.collect import SweepError, collect
    from entrenar_bench.aggregate.tracking import log_report

    command = sweep_command(sweep_type)
    try:
        collection = collect(sweep_dir, metric)
    except SweepError as e:
        raise UsageError(str(e)) from None
    except UsageError as e:
        raise UsageError(f"{e} (the sweep is kept: entrenar-bench aggregate {sweep_dir} --metric NAME)") from None
    if collection.completed.empty:
        reasons = {str(e) for e in collection.runs.get("error", []) if isinstance(e, str)}
        raise NoResults(f"no run completed in {sweep_dir} ({'; '.join(sorted(reasons))[:300] or 'see sweep.log'})")
    document, text = command_report(command, collection, range_info)
    untracked = log_report(Path(sweep_dir), document, text)  # to the sweep's MLflow parent run, if it has one
    return SweepResult(sweep_type, Path(sweep_dir), document, text, (*collection.unwritten, *untracked))


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
    command = sweep_command(sweep_type)
    if resume is not None:
        plan = read_round_plan(resume, sweep_type)
        design = Design.from_dict(plan.design)
    else:
        design = (design or Design(max_runs=command.defaults()["runs"])).check()
        plan = RoundPlan(sweep_type, command.swept_key, swept_values(overrides, command.swept_key), list(overrides),
                         design.looks, 1, design.as_dict())
    baseline = baseline_of(sweep_type, plan.values)
    sweep_dir = run_rounds(plan, decider(design, plan.key, plan.values, baseline, metric),
                           None if resume is None else Path(resume).resolve(), preload=REPORT_MODULES)
    result = report(sweep_type, sweep_dir, range_info, metric)
    result.document["sequential"], lines, unwritten = sequential_section(sweep_dir, sweep_type, design, plan.key,
                                                                         plan.values, metric)
    result.text = "\n".join([result.text, *lines])
    result.unwritten = (*result.unwritten, *unwritten)
    return result


def run_command(name: str, values: Mapping[str, Any] | None = None, runs: int | None = None,
                overrides: Sequence[str] = (), teachers: int = 1, metric: str | None = None,
                sequential: Design | None = None) -> SweepResult:
    """Plan the registered sweep command ``name`` with its option ``values`` (missing: its defaults) and
    ``runs`` seeds, run it with the extra ``overrides``, and report (the command line does the same).
    ``sequential``: ``--runs auto``, seeds added in rounds (:func:`auto_sweep`; ``runs`` is then ignored)."""
    command = sweep_command(name)
    if metric is not None:
        check_name(metric)  # its form before anything runs; whether the runs record it once they exist
    values = dict(values or {})
    planned = command.plan(values, 1 if sequential else runs or command.defaults()["runs"], teachers)
    if sequential is not None:
        return auto_sweep(name, [*planned, *overrides], sequential, command.range_info(values), metric)
    sweep_dir = run_sweep(name, [*planned, *overrides], preload=REPORT_MODULES)
    return report(name, sweep_dir, command.range_info(values), metric)


def _range_values(range: tuple[float, float] | None, step: float | None) -> dict[str, float | None]:
    start, end = range if range is not None else (None, None)
    return {"start": start, "end": end, "step": step}


def temperature_sweep(range: tuple[float, float] | None = None, step: float | None = None, runs: int | None = None,
                      overrides: Sequence[str] = (), teachers: int = 1, metric: str | None = None,
                      sequential: Design | None = None) -> SweepResult:
    """kd at each temperature in ``range`` (inclusive) every ``step``, ``runs`` seeds each
    (defaults: conf/bench/temperature.yaml, 1.0 to 8.0 by 0.5, 3 seeds); ``teachers`` K crosses K teachers
    (teacher seeds 0..K-1) with the seeds, and the tests treat the teacher as a random factor. ``sequential``:
    ``--runs auto``, seeds added in rounds and points worse than the best dropped (``runs`` is then ignored)."""
    return run_command("temperature", _range_values(range, step), runs, overrides, teachers, metric, sequential)


def alpha_sweep(range: tuple[float, float] | None = None, step: float | None = None, runs: int | None = None,
                overrides: Sequence[str] = (), teachers: int = 1, metric: str | None = None,
                sequential: Design | None = None) -> SweepResult:
    """kd at each alpha in ``range`` (inclusive) every ``step``, ``runs`` seeds each
    (defaults: conf/bench/alpha.yaml, 0.0 to 1.0 by 0.1, 3 seeds); ``teachers`` as for temperature_sweep."""
    return run_command("alpha", _range_values(range, step), runs, overrides, teachers, metric, sequential)


def compare_strategies(strategies: Sequence[str] | None = None, runs: int | None = None,
                       overrides: Sequence[str] = (), teachers: int = 1, metric: str | None = None,
                       sequential: Design | None = None) -> SweepResult:
    """Each strategy (``none`` = the student alone) with ``runs`` seeds; Welch + Holm across pairs
    (defaults: conf/bench/compare.yaml, the five strategies, 5 seeds); ``teachers`` as for temperature_sweep;
    ``sequential``: ``--runs auto``, each strategy against ``none`` (else the first) in rounds."""
    return run_command("compare", {"strategies": strategies}, runs, overrides, teachers, metric, sequential)


def ablation_study(components: Sequence[str] | None = None, runs: int | None = None,
                   base: Mapping[str, Any] | None = None, overrides: Sequence[str] = (), teachers: int = 1,
                   metric: str | None = None, sequential: Design | None = None) -> SweepResult:
    """The full objective, then each component and each pair of components removed
    (defaults: conf/bench/ablation.yaml, every component, 3 seeds); ``teachers`` as for temperature_sweep;
    ``sequential``: ``--runs auto``, each variant against the full objective in rounds."""
    return run_command("ablation", {"components": components, "base": mapping_to_overrides(base or {})}, runs,
                       overrides, teachers, metric, sequential)


def export_student(sweep_dir: Path | str, to: Path | str, group: str | None = None, metric: str | None = None
                   ) -> Path:
    """Write the selected (or named) group's best run's student to ``to`` with its tokenizer and a model card
    (aggregate/export.py); UsageError (one line) for anything that cannot be exported. Returns ``to``."""
    from entrenar_bench.aggregate.export import export

    return export(Path(sweep_dir), Path(to), group, metric).target
