"""Measured configuration points from a cost-performance sweep directory (the runs on disk).

Runs are grouped by their ``configuration`` key (set by each ``cost_config`` option). Per
configuration: accuracy = mean (and sample std) of the completed runs' test accuracy; hours = mean
measured training wall time / 3600; memory = the largest measured peak; device = where they ran.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from entrenar_bench.aggregate.collect import Collection, collect
from entrenar_bench.aggregate.stats import describe
from entrenar_bench.cost.analysis import ConfigPoint
from entrenar_bench.cost.configs import NAME_KEY
from entrenar_bench.cost.model import MIXED
from entrenar_bench.run.record import CorruptRecord, read_result

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
    config = record.get("config") or {}
    method = (config.get("finetune") or {}).get("method", "none")
    details: dict[str, Any] = {"method": method, "method_name": METHODS.get(method, str(method))}
    for name, key in DETAILS.items():
        value: Any = config
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            details[name] = value
    details["trainable_params"] = (record.get("params") or {}).get("trainable")
    details["memory_kind"] = record.get("peak_memory_kind")
    return details


def points_from_collection(collection: Collection) -> list[ConfigPoint]:
    """One point per configuration with at least one completed run, in sweep order."""
    runs = collection.runs
    if COLUMN not in runs or runs[COLUMN].dropna().empty:
        raise NotCostSweep(f"{collection.sweep_dir}: no cost-performance runs (no completed run sets "
                           f"'{NAME_KEY}'; run entrenar-bench cost-performance)")
    done = collection.completed.dropna(subset=[COLUMN])
    groups = sorted(done.groupby(COLUMN, sort=False), key=lambda g: min(_job_order(j) for j in g[1]["job"]))
    points = []
    for name, rows in groups:
        accuracies = tuple(float(a) for a in rows["accuracy"])
        summary = describe(accuracies)
        devices = sorted(set(rows["device"].dropna().astype(str)))
        points.append(ConfigPoint(
            name=str(name),
            accuracy=summary["mean"],
            accuracy_std=summary["std"],
            accuracies=accuracies,
            hours=float(rows["time_s"].astype(float).mean()) / 3600.0,
            memory_gb=float(rows["peak_memory_gb"].astype(float).max()),
            device=devices[0] if len(devices) == 1 else f"{MIXED}{'; '.join(devices)}",
            details=_details(collection.sweep_dir, list(rows["job"])),
        ))
    return points


def points_from_sweep(sweep_dir: Path | str) -> tuple[list[ConfigPoint], Collection]:
    """Read a sweep directory; SweepError if it is not one, NotCostSweep if it holds no cost-performance run."""
    collection = collect(Path(sweep_dir))
    return points_from_collection(collection), collection
