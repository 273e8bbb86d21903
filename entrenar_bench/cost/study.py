"""Run a cost-performance study: every configuration, ``runs`` seeds each, as one Hydra multirun.

The configurations' ``cost_config`` options are written into ``<sweep dir>/configurations/`` (so the
sweep records exactly what ran and can be resumed), that folder is put on Hydra's search path, and
the multirun sweeps ``cost_config`` over them and ``seed`` over ``0..runs-1``.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from entrenar_bench.aggregate.collect import Collection, SweepError
from entrenar_bench.cost.analysis import ConfigPoint
from entrenar_bench.cost.configs import (
    BENCH,
    DEFAULT_CONFIGS,
    GROUP,
    Configuration,
    option_texts,
    read_configurations,
    write_options,
)
from entrenar_bench.cost.points import NotCostSweep, points_from_sweep
from entrenar_bench.errors import NoResults, UsageError
from entrenar_bench.sweep.compose import expand_jobs
from entrenar_bench.sweep.launch import new_sweep_dir, run_sweep
from entrenar_bench.sweep.commands import bench_runs
from entrenar_bench.sweep.plan import quote_value, seed_overrides

OPTIONS_DIR = "configurations"
PREFIX = "sweep_"  # keeps the sweep's options apart from the packaged ones of the same name


def output_dir(overrides: Sequence[str] = (), configuration: Configuration | None = None) -> Path:
    """``paths.output_dir`` as the study's jobs resolve it, composed with a configuration's overrides
    (default: the first default one) so that the run overrides are checked against a real job."""
    configuration = configuration or read_configurations(DEFAULT_CONFIGS)[0]
    first = expand_jobs([f"+bench={BENCH}", *configuration.overrides, *overrides])[1]
    return Path(first.paths.output_dir).resolve()


def run_study(configurations: Sequence[Configuration] | None = None, runs: int | None = None,
              overrides: Sequence[str] = (), source: str | None = None) -> Path:
    """Check everything, then run the study; return its sweep directory. UsageError before anything runs."""
    if configurations is None:
        configurations, source = read_configurations(DEFAULT_CONFIGS), str(DEFAULT_CONFIGS)
    seeds = seed_overrides(runs or bench_runs(BENCH))
    texts = option_texts(configurations, source or "the caller", prefix=PREFIX, extra=overrides)
    sweep_dir = new_sweep_dir(str(output_dir(overrides, configurations[0])), BENCH)
    options = sweep_dir / OPTIONS_DIR
    names = write_options(texts, options)
    sweep = [*seeds, f"{GROUP}={','.join(names)}", f"hydra.searchpath=[{quote_value(f'file://{options}')}]",
             *overrides]
    try:
        return run_sweep(BENCH, sweep, sweep_dir)
    except UsageError:  # a bad override only the combined jobs reveal: leave nothing behind
        shutil.rmtree(options)
        for folder in (sweep_dir, sweep_dir.parent):  # only if nothing else is there
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        raise


def load_points(sweep_dir: Path | str, given: bool = True, metric: str | None = None
                ) -> tuple[list[ConfigPoint], Collection]:
    """Points and collection of a cost-performance sweep, judged on ``metric`` (None: the runs' primary one). A
    directory the user gave (``--from``) that is not one is a UsageError, as is a metric its runs did not record;
    a sweep just run with no completed run is NoResults, as is one whose runs all failed."""
    try:
        points, collection = points_from_sweep(sweep_dir, metric)
    except (SweepError, NotCostSweep) as e:
        if given:
            raise UsageError(f"--from {e}") from None
        raise NoResults(f"no run completed in {sweep_dir}; see {Path(sweep_dir) / 'sweep.log'}") from None
    except UsageError as e:  # a metric the runs did not record
        kept = "" if given else f" (the sweep is kept: add --from {sweep_dir} --metric NAME)"
        raise UsageError(f"{e}{kept}") from None
    if not points:
        reasons = sorted({str(e) for e in collection.runs.get("error", []) if isinstance(e, str)})
        raise NoResults(f"no run completed in {sweep_dir} ({'; '.join(reasons)[:300] or 'see sweep.log'})")
    return points, collection


def latest_sweep(overrides: Sequence[str] = ()) -> Path | None:
    """The newest sweep under ``outputs/cost_performance/`` with at least one completed configuration."""
    root = output_dir(overrides) / BENCH
    if not root.is_dir():
        return None
    for candidate in sorted((p for p in root.iterdir() if p.is_dir()), reverse=True):
        try:
            if points_from_sweep(candidate)[0]:
                return candidate
        except (SweepError, NotCostSweep):
            continue
    return None
