"""Run a sweep as a Hydra multirun in a child process, with a progress bar on stderr.

The child is plain ``python -m entrenar_bench.run -m +bench=<task> ...``: the wrapper adds
nothing Hydra does not already do, so a sweep run by hand or on a cluster is the same thing.
Its log goes to ``<sweep dir>/sweep.log``.

Resume (``sweep/resume.py``) reruns the same multirun into the same directory.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from entrenar_bench.sweep.compose import check_jobs, expand_jobs
from entrenar_bench.sweep.plan import quote_value
from entrenar_bench.run.record import RESULT_FILE

stderr = Console(stderr=True)


def sweep_statuses(sweep_dir: Path, known: dict[str, tuple[str, int]] | None = None) -> dict[str, tuple[str, int]]:
    """``(status, mtime_ns)`` of every job directory that has a result.json, keyed by directory name.

    A record whose mtime is unchanged since ``known`` is not read again (the bar polls while jobs run).
    """
    known = known or {}
    statuses = {}
    if not sweep_dir.is_dir():
        return statuses
    with os.scandir(sweep_dir) as entries:
        for entry in entries:
            path = Path(entry.path, RESULT_FILE)
            try:
                mtime = path.stat().st_mtime_ns
                if entry.name in known and known[entry.name][1] == mtime:
                    statuses[entry.name] = known[entry.name]
                    continue
                statuses[entry.name] = (json.loads(path.read_text())["status"], mtime)
            except (OSError, ValueError, KeyError, TypeError):
                continue
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


def launch_multirun(task_name: str, overrides: Sequence[str], sweep_dir: Path | None = None,
                    preload: Sequence[str] = ()) -> Path:
    """Run ``python -m entrenar_bench.run -m OVERRIDES`` into ``sweep_dir`` (new if None), showing progress,
    while importing the ``preload`` modules in the background."""
    overrides = list(overrides)
    jobs, first = expand_jobs(overrides)
    check_jobs(jobs)
    sweep_dir = sweep_dir or new_sweep_dir(first.paths.output_dir, task_name)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "entrenar_bench.run", "-m", *overrides,
               f"hydra.sweep.dir={quote_value(str(sweep_dir))}"]
    before = sweep_statuses(sweep_dir)
    done_before = sum(1 for status, _ in before.values() if status == "completed")
    stderr.print(f"sweep: {len(jobs)} runs -> {sweep_dir}" + (f" ({done_before} already completed)" if before else ""),
                 highlight=False)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("failed {task.fields[failed]}"), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn())
    # A slow refresh and cached records: the bar must not take CPU from the jobs it watches.
    with open(sweep_dir / "sweep.log", "ab") as log, \
            Progress(*columns, console=stderr, transient=False, refresh_per_second=2) as bar:
        task = bar.add_task(task_name, total=len(jobs), failed=0)
        child = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        preload_in_background(preload)
        seen = dict(before)
        try:
            while not _exited(child, timeout=0.5):
                seen = _update(bar, task, sweep_dir, before, seen)
        except BaseException:
            child.terminate()
            child.wait()
            raise
        _update(bar, task, sweep_dir, before, seen)
    if child.returncode:
        stderr.print(f"the multirun exited with code {child.returncode}; its log: {sweep_dir / 'sweep.log'}",
                     highlight=False)
    return sweep_dir


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
