"""``entrenar-bench export``: the selected (or named) group's best run's student, its tokenizer and a model card.

The group: the one the sweep's report selects (the best mean validation value of the deciding metric,
aggregate/selection.py), or the one named. Its run: the same rule over the group's completed runs, each on its
own validation value (ties: the lower seed). The run's ``student/`` (written at the end of the run by
models/saving.py: LoRA merged, ``save_pretrained`` and the tokenizer) is copied with a model card ``README.md``
(aggregate/model_card.py) into a folder beside the target, renamed into place when complete.

Refused with one line (UsageError, exit 2), before anything is written: a target that exists and is not an
empty directory, a directory that is not a sweep or holds no completed run, a group that does not exist (the
groups are listed), a run that saved no student, a saved student holding anything but regular files.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entrenar_bench.aggregate import selection, stats
from entrenar_bench.aggregate.collect import Collection, SweepError, collect
from entrenar_bench.aggregate.metrics import tie_breaker
from entrenar_bench.aggregate.model_card import Chosen, model_card
from entrenar_bench.aggregate.report import (
    best_and_runner_up, config_order, family_test, group_summaries, metric_samples,
)
from entrenar_bench.errors import UsageError
from entrenar_bench.files import write_text_atomic
from entrenar_bench.models.saving import STUDENT_DIR, saved_format
from entrenar_bench.run.record import CorruptRecord, read_result

CARD = "README.md"


@dataclass
class Export:
    """What was exported: where, which group and run, and the model card's text."""

    target: Path
    group: str
    job: str
    seed: int
    card: str


def check_target(target: Path) -> None:
    """The target may be new or an empty directory; nothing else is overwritten."""
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise UsageError(f"--to {target}: exists and is not a directory")
    if target.is_dir() and any(target.iterdir()):
        raise UsageError(f"--to {target}: exists and is not empty (export writes a new or empty directory)")


def _collection(sweep_dir: Path, metric: str | None) -> Collection:
    try:
        collection = collect(sweep_dir, metric)
    except SweepError as e:
        raise UsageError(f"{sweep_dir}: not a sweep directory ({e})") from None
    if collection.completed.empty:
        raise UsageError(f"{sweep_dir}: no completed run to export")
    return collection


def _choose(collection: Collection, group: str | None, test: str = "welch"
            ) -> tuple[dict[str, Any], dict[str, Any] | None, bool, int]:
    """The group to export, its test against the runner-up (or, named, against the selected group) taken from
    the report's family (``aggregate`` with the same ``test``: every pair, Holm-adjusted), whether the report
    selected it, and the family's size."""
    metric = collection.metric
    summaries = group_summaries(collection, sort_key=config_order(collection))
    samples, seeds = metric_samples(collection)
    pairs = stats.pairwise(samples, seeds, test=test)
    best, runner, versus = best_and_runner_up(summaries, pairs, metric)
    if group is None or group == best["group"]:
        return best, versus, True, len(pairs)
    named = next((s for s in summaries if s["group"] == group), None)
    if named is None:
        known = ", ".join(s["group"] for s in summaries)
        raise UsageError(f"--group {group}: no such group with a completed run; the groups: {known}")
    return named, family_test(pairs, named["group"], best["group"], metric), False, len(pairs)


def best_run(collection: Collection, group: str) -> dict[str, Any]:
    """The group's completed run with the best validation value of the deciding metric (ties: its
    tie-breaker's, then the lower seed)."""
    metric = collection.metric
    rows = collection.completed[collection.completed["group"] == group].sort_values(["seed", "job"])
    records = rows.to_dict("records")

    def value(row: dict[str, Any], column: str) -> float | None:
        v = row.get(column)
        return None if v is None or v != v else float(v)  # NaN: not recorded

    on_val = any(value(r, metric.val_column) is not None for r in records)
    column, tie = (metric.val_column, tie_breaker(metric).val_column) if on_val else \
        (metric.column, tie_breaker(metric).column)
    return selection.rank(records, lambda r: value(r, column), lambda r: value(r, tie), metric)[0]


def _copy_student(source: Path, target: Path) -> None:
    """Copy the saved student's regular files (never a link or a FIFO someone put there)."""
    for root, dirs, files in os.walk(source):
        here = Path(root)
        for name in [*dirs, *files]:
            path = here / name
            if path.is_symlink() or not (path.is_dir() or path.is_file()):
                raise UsageError(f"{path}: not a regular file; the saved student is not exported")
        for name in files:
            destination = target / (here / name).relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(here / name, destination)


def export(sweep_dir: Path, target: Path, group: str | None = None, metric: str | None = None,
           command: str | None = None, paired: bool = False) -> Export:
    """Export the student of ``group`` (default: the selected one) judged on ``metric`` (default: the runs'
    primary metric) from ``sweep_dir`` to ``target``; ``command``: the command line, for the card; ``paired``:
    the card's test is the paired t-test (as ``aggregate --paired``)."""
    check_target(target)
    collection = _collection(sweep_dir, metric)
    chosen, test, selected, family = _choose(collection, group, "paired" if paired else "welch")
    run = best_run(collection, chosen["group"])
    student = sweep_dir / str(run["job"]) / STUDENT_DIR
    form = saved_format(student) if student.is_dir() and not student.is_symlink() else None
    if form is None:
        raise UsageError(f"run {run['job']} (group {chosen['group']}, seed {run['seed']}) saved no student "
                         f"({student} is missing: runs save it with save_student=true, the default; rerun it)")
    try:
        record = read_result(sweep_dir / str(run["job"])) or {}
    except CorruptRecord as e:
        raise UsageError(str(e)) from None
    partial = target.with_name(f".{target.name}.export-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _copy_student(student, partial)
        card = model_card(Chosen(collection, chosen, test, selected, run, record, form, partial, family), command)
        write_text_atomic(partial / CARD, card)
        if target.is_dir():
            target.rmdir()  # checked empty above
        target.parent.mkdir(parents=True, exist_ok=True)
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return Export(target, chosen["group"], str(run["job"]), int(run["seed"]), card)
