"""Run a sweep as a Hydra multirun in a child process, with a progress bar on stderr.

The child is plain ``python -m entrenar_bench.run -m +bench=<task> ...``: the wrapper adds
nothing Hydra does not already do, so a sweep run by hand or on a cluster is the same thing (but for
``hydra/sweeper=checked``, which skips Hydra's second composition of jobs checked here already).
Its log goes to ``<sweep dir>/sweep.log``.

Resume (``sweep/resume.py``) reruns the same multirun into the same directory. One process at a time
launches a sweep's jobs, and the child never outlives the wrapper (``sweep/supervise.py``).
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from entrenar_bench.errors import UsageError
from entrenar_bench.sweep.compose import check_jobs, expand_jobs, plugin_installed
from entrenar_bench.sweep.plan import quote_value
from entrenar_bench.sweep.progress import RESUMED, RunsRemainingColumn
from entrenar_bench.sweep.queue import SlurmQueue, slurm_queue
from entrenar_bench.sweep.supervise import hold_sweep, make_sweep_dir, record_plan, supervised
from entrenar_bench.run.record import RESULT_FILE, CorruptRecord, read_result

stderr = Console(stderr=True)


def sweep_statuses(sweep_dir: Path, known: dict[str, tuple[str, int]] | None = None) -> dict[str, tuple[str, int]]:
    """``(status, mtime_ns)`` of every job directory that has a result.json, keyed by directory name.

    A record whose mtime is unchanged since ``known`` is not read again (the bar polls while jobs run).
    """
    known = known or {}
    statuses = {}
    try:
        with os.scandir(sweep_dir) as entries:
            for entry in entries:
                try:
                    mtime = Path(entry.path, RESULT_FILE).lstat().st_mtime_ns
                    if entry.name in known and known[entry.name][1] == mtime:
                        statuses[entry.name] = known[entry.name]
                        continue
                    record = read_result(Path(entry.path))
                except (OSError, CorruptRecord):  # unreadable or damaged: neither completed nor failed
                    continue
                if record:
                    statuses[entry.name] = (record["status"], mtime)
    except OSError:  # no sweep directory (yet), or an unreadable one
        pass
    return statuses


def new_sweep_dir(output_dir: str, task_name: str) -> Path:
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
    return Path(output_dir).resolve() / task_name / stamp


def run_sweep(task_name: str, overrides: Sequence[str], sweep_dir: Path | None = None,
              preload: Sequence[str] = ()) -> Path:
    """Check every job's config, run the ``+bench=<task_name>`` multirun, return its sweep directory.

    Jobs already completed in ``sweep_dir`` are skipped by the jobs themselves (resume).
    """
    return launch_multirun(task_name, [f"+bench={task_name}", *overrides], sweep_dir, preload)


def preload_in_background(modules: Sequence[str]) -> None:
    """Import ``modules`` on a thread while the sweep runs: the wrapper's report stack then loads
    while it only waits on the child, not after the sweep (where it would add to the wall time)."""
    if modules:
        threading.Thread(target=lambda: [importlib.import_module(m) for m in modules], daemon=True).start()


CHECKED_SWEEPER = "checked"  # hydra_plugins/entrenar_bench_sweeper: the basic sweeper less its batch re-validation
WRAPPER_KEYS = ("hydra.sweep.dir", "hydra.run.dir", "hydra.mode")  # set here: a user's value would be ignored


def refuse_wrapper_keys(overrides: Sequence[str]) -> None:
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0].strip()
        if key in WRAPPER_KEYS:
            raise UsageError(f"{override!r} would be ignored: entrenar-bench runs every sweep as a multirun into "
                             "<paths.output_dir>/<task>/<time> (or --resume DIR); put sweeps elsewhere with "
                             "-- paths.output_dir=DIR")


def sweeper_overrides(overrides: Sequence[str]) -> list[str]:
    """``hydra/sweeper=checked`` for a multirun whose jobs :func:`check_jobs` composed and checked: each job is then
    composed once (by the launcher), not twice; none where the overrides choose a sweeper or Hydra does not find
    the plugin (``hydra_plugins/`` not installed: the basic sweeper, which checks again)."""
    if any(o.lstrip("+~").startswith("hydra/sweeper=") for o in overrides):
        return []
    return [f"hydra/sweeper={CHECKED_SWEEPER}"] if plugin_installed(CHECKED_SWEEPER, "hydra/sweeper") else []


def launch_multirun(task_name: str, overrides: Sequence[str], sweep_dir: Path | None = None,
                    preload: Sequence[str] = ()) -> Path:
    """Run ``python -m entrenar_bench.run -m OVERRIDES`` into ``sweep_dir`` (new if None), showing progress,
    while importing the ``preload`` modules in the background."""
    overrides = list(overrides)
    refuse_wrapper_keys(overrides)
    jobs, first = expand_jobs(overrides)
    check_jobs(jobs)
    sweep_dir = sweep_dir or new_sweep_dir(first.paths.output_dir, task_name)
    created = make_sweep_dir(sweep_dir)
    with hold_sweep(sweep_dir):  # before anything is printed: a second launch of this sweep stops here
        return _launch(task_name, overrides, len(jobs), sweep_dir, created, preload, slurm_queue(first, sweep_dir))


def _launch(task_name: str, overrides: list[str], total: int, sweep_dir: Path, created: bool,
            preload: Sequence[str], queue: SlurmQueue | None = None) -> Path:
    command = [sys.executable, "-m", "entrenar_bench.run", "-m", *overrides, *sweeper_overrides(overrides),
               f"hydra.sweep.dir={quote_value(str(sweep_dir))}"]
    before = sweep_statuses(sweep_dir)
    done_before = sum(1 for status, _ in before.values() if status == "completed")
    stderr.print(f"sweep: {total} runs -> {sweep_dir}" + (f" ({done_before} already completed)" if before else ""),
                 highlight=False, soft_wrap=True)  # one line, however long the path
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("done, {task.fields[failed]} failed"), TextColumn("{task.fields[queue]}"),
               TimeElapsedColumn(), TextColumn("ETA"), RunsRemainingColumn())
    # A slow refresh and cached records: the bar must not take CPU from the jobs it watches.
    with open(sweep_dir / "sweep.log", "ab") as log, \
            Progress(*columns, console=stderr, transient=False, refresh_per_second=2) as bar:
        record_plan(sweep_dir, task_name, overrides)
        task = bar.add_task(task_name, total=total, failed=0, queue="", **{RESUMED: done_before})
        with supervised(command, log, sweep_dir, task_name, created, queue.cancel if queue else None) as child:
            preload_in_background(preload)
            seen = dict(before)
            while not _exited(child, timeout=0.5):
                seen = _update(bar, task, sweep_dir, before, seen)
                if queue and _watch(queue, bar, task).drained():
                    break  # the multirun waits on jobs SLURM ended without a result: it would wait for ever
            while queue and _watch(queue, bar, task).active():  # the multirun gave up; its other jobs still run
                seen = _update(bar, task, sweep_dir, before, seen)
                time.sleep(0.5)
        _update(bar, task, sweep_dir, before, seen)
    if child.returncode:
        if queue:
            queue.check_submission()
        stderr.print(f"the multirun exited with code {child.returncode}; its log: {sweep_dir / 'sweep.log'}",
                     highlight=False)
    if queue and queue.ended():
        ended = ", ".join(f"{job} {state}" for job, state in sorted(queue.ended().items()))
        stderr.print(f"SLURM ended {len(queue.ended())} job(s) without a result ({ended}); rerun them with "
                     f"entrenar-bench {task_name.replace('_', '-')} --resume {sweep_dir}", highlight=False)
    return sweep_dir


def _watch(queue: SlurmQueue, bar: Progress, task) -> SlurmQueue:
    """Show the queue on the progress line; stop the sweep (UsageError) if SLURM can never start its jobs."""
    queue.poll()
    bar.update(task, queue=queue.summary())
    queue.check()
    return queue


def _exited(child: subprocess.Popen, timeout: float) -> bool:
    """Wait up to ``timeout`` s for the child; True as soon as it has exited."""
    try:
        child.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


def _update(bar: Progress, task, sweep_dir: Path, before: dict[str, tuple[str, int]],
            seen: dict[str, tuple[str, int]]) -> dict[str, tuple[str, int]]:
    """Completed jobs count as done; failed ones only once this sweep wrote their record."""
    now = sweep_statuses(sweep_dir, seen)
    done = sum(1 for status, _ in now.values() if status == "completed")
    failed = sum(1 for name, entry in now.items() if entry[0] == "failed" and before.get(name) != entry)
    bar.update(task, completed=done + failed, failed=failed)
    return now
