"""Run a sweep as a Hydra multirun in a child process, with a progress bar on stderr.

The child is plain ``python -m entrenar_bench.run -m +bench=<task> ...``: the wrapper adds
nothing Hydra does not already do, so a sweep run by hand or on a cluster is the same thing.
Its log goes to ``<sweep dir>/sweep.log``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from entrenar_bench.cli.config import check_jobs, expand_jobs
from entrenar_bench.record import RESULT_FILE

stderr = Console(stderr=True)


def quote_value(value: str) -> str:
    """Quote an override value for Hydra's grammar when it holds anything but plain path characters."""
    if re.fullmatch(r"[\w./\-:+@]*", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def sweep_statuses(sweep_dir: Path) -> dict[str, str]:
    """Status of every job directory that has a result.json, keyed by directory name."""
    statuses = {}
    if not sweep_dir.is_dir():
        return statuses
    with os.scandir(sweep_dir) as entries:
        for entry in entries:
            try:
                statuses[entry.name] = json.loads(Path(entry.path, RESULT_FILE).read_text())["status"]
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return statuses


def new_sweep_dir(output_dir: str, task_name: str) -> Path:
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
    return Path(output_dir).resolve() / task_name / stamp


def run_sweep(task_name: str, overrides: Sequence[str], sweep_dir: Path | None = None) -> Path:
    """Check every job's config, run the multirun, return its sweep directory.

    Jobs already completed in ``sweep_dir`` are skipped by the jobs themselves (resume).
    """
    overrides = [f"+bench={task_name}", *overrides]
    jobs, first = expand_jobs(overrides)
    check_jobs(jobs)
    sweep_dir = sweep_dir or new_sweep_dir(first.paths.output_dir, task_name)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "entrenar_bench.run", "-m", *overrides,
               f"hydra.sweep.dir={quote_value(str(sweep_dir))}"]
    stderr.print(f"sweep: {len(jobs)} runs -> {sweep_dir}", highlight=False)
    before = sweep_statuses(sweep_dir)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("failed {task.fields[failed]}"), TimeElapsedColumn(), TextColumn("ETA"),
               TimeRemainingColumn())
    with open(sweep_dir / "sweep.log", "ab") as log, Progress(*columns, console=stderr, transient=False) as bar:
        task = bar.add_task(task_name, total=len(jobs), failed=0)
        child = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        try:
            while child.poll() is None:
                time.sleep(0.5)
                _update(bar, task, sweep_dir, before)
        except BaseException:
            child.terminate()
            child.wait()
            raise
        _update(bar, task, sweep_dir, before)
    return sweep_dir


def _update(bar: Progress, task, sweep_dir: Path, before: dict[str, str]) -> None:
    now = sweep_statuses(sweep_dir)
    done = sum(1 for name, status in now.items() if status == "completed")
    failed = sum(1 for name, status in now.items() if status == "failed" and before.get(name) != "failed")
    bar.update(task, completed=done + failed, failed=failed)
