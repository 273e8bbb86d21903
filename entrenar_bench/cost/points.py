"""Measured configuration points from a cost-performance sweep directory (the runs on disk).

Runs are grouped by their ``configuration`` key (set by each ``cost_config`` option). Per
configuration: accuracy = mean (and sample std) of the completed runs' test accuracy; the deciding metric
(the collection's, aggregate/metrics.py) likewise, with its mean validation value (what ``recommend``
chooses on); every other recorded metric's mean (what constraints such as ``--max-perplexity`` check);
hours = mean measured training wall time / 3600; memory = the largest measured peak; device = where they ran.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from entrenar_bench.aggregate.collect import Collection, collect
from entrenar_bench.aggregate.metrics import COLUMN_PREFIX, recorded_names
from entrenar_bench.aggregate.stats import describe
from entrenar_bench.cost.analysis import ConfigPoint
from entrenar_bench.cost.configs import NAME_KEY
from entrenar_bench.cost.model import MIXED
from entrenar_bench.cost.teacher_cost import spent_details
from entrenar_bench.run.record import CorruptRecord, field_of, read_result

COLUMN = f"cfg:{NAME_KEY}"
METHODS = {"lora": "LoRA", "full": "Full fine-tune", "none": "From scratch"}
DETAILS = {  # detail -> config key
    "rank": "finetune.r", "alpha": "finetune.alpha", "learning_rate": "train.lr", "batch_size": "data.batch_size",
    "epochs": "train.epochs", "distill": "distill.name", "student": "student.name",
}


class NotCostSweep(ValueError):
    """The directory holds no cost-performance runs."""


def _job_order(job: Any) -> float:
    try:
        return float(job)
    except (TypeError, ValueError):
        return math.inf


def _first_record(sweep_dir: Path, jobs: list[str]) -> dict[str, Any]:
    for job in sorted(jobs, key=_job_order):
        try:
            record = read_result(sweep_dir / job)
        except CorruptRecord:
            continue
        if record:
            return record
    return {}


def _details(sweep_dir: Path, jobs: list[str]) -> dict[str, Any]:
    """Method, rank, learning rate, batch size... from the resolved config of the configuration's first run."""
    record = _first_record(sweep_dir, jobs)
    method = field_of(record, "config.finetune.method")
    method = method if isinstance(method, str) else "none"  # a record read from disk may hold anything
    details: dict[str, Any] = {"method": method, "method_name": METHODS.get(method, method)}
    for name, key in DETAILS.items():
        value = field_of(record, f"config.{key}")
        if isinstance(value, (str, int, float, bool)):
            details[name] = value
    for name, key in (("epochs", "finetune.epochs"), ("learning_rate", "finetune.lr"),
                      ("student", "finetune.base.name")):
        value = field_of(record, key)  # what the fine-tuning run did: its own epochs and rate, its base student
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            details[name] = value
    trainable = field_of(record, "params.trainable")
    details["trainable_params"] = trainable if isinstance(trainable, int) and not isinstance(trainable, bool) else None
    kind = record.get("peak_memory_kind")
    details["memory_kind"] = kind if isinstance(kind, str) else None
    return details


def _mean(rows: pd.DataFrame, column: str) -> float | None:
    values = pd.to_numeric(rows[column], errors="coerce").dropna() if column in rows else pd.Series(dtype=float)
    return float(values.mean()) if len(values) else None


def _values(rows: pd.DataFrame, column: str) -> tuple[float, ...]:
    return tuple(pd.to_numeric(rows[column], errors="coerce").dropna()) if column in rows else ()


def points_from_collection(collection: Collection) -> list[ConfigPoint]:
    """One point per configuration with a completed run that recorded the deciding metric, in sweep order."""
    runs = collection.runs
    if COLUMN not in runs or runs[COLUMN].dropna().empty:
        raise NotCostSweep(f"{collection.sweep_dir}: no cost-performance runs (no completed run sets "
                           f"'{NAME_KEY}'; run entrenar-bench cost-performance)")
    done = collection.completed.dropna(subset=[COLUMN])
    groups = sorted(done.groupby(COLUMN, sort=False), key=lambda g: min(_job_order(j) for j in g[1]["job"]))
    metric, names = collection.metric, recorded_names(done)
    points = []
    for name, rows in groups:
        accuracies = tuple(float(a) for a in rows["accuracy"])
        summary = describe(accuracies)
        scores = _values(rows, metric.column)
        if not scores:
            collection.problems.append(f"configuration {name!r}: no run recorded {metric.name}; left out")
            continue
        devices = sorted(set(rows["device"].dropna().astype(str)))
        details = _details(collection.sweep_dir, list(rows["job"]))
        details["generation_share"] = (_mean(rows, "generation_s") or 0.0) / max(_mean(rows, "time_s") or 0.0, 1e-12)
        details.update(spent_details(rows))
        points.append(ConfigPoint(
            name=str(name),
            accuracy=summary["mean"],
            accuracy_std=summary["std"],
            accuracies=accuracies,
            hours=float(rows["time_s"].astype(float).mean()) / 3600.0,
            memory_gb=float(rows["peak_memory_gb"].astype(float).max()),
            device=devices[0] if len(devices) == 1 else f"{MIXED}{'; '.join(devices)}",
            details=details,
            val_accuracy=_mean(rows, "val_accuracy"),
            val_loss=_mean(rows, "val_loss"),
            metric=metric,
            score_std=describe(scores)["std"],
            scores=scores,
            val_score=_mean(rows, metric.val_column),
            measured={n: _mean(rows, f"{COLUMN_PREFIX}{n}") for n in names},
        ))
    return points


def points_from_sweep(sweep_dir: Path | str, metric: str | None = None) -> tuple[list[ConfigPoint], Collection]:
    """Read a sweep directory, judged on ``metric`` (default: the runs' primary metric); SweepError if it is not
    one, NotCostSweep if it holds no cost-performance run, UsageError if the runs did not record ``metric``."""
    collection = collect(Path(sweep_dir), metric)
    return points_from_collection(collection), collection
