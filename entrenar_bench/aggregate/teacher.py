"""The teacher as the reports' reference: its own measured metrics, and how many teachers a conclusion rests on.

Each run that used a teacher records its cache directory (``teacher.cache`` in result.json); the
teacher's metrics were measured when it was trained and sit beside its weights in ``teacher.json``, with the
seconds it took to train and measure (``measured_s``; older records: ``time_s``, its training alone). Metrics
the runs measured of it (``teacher.sample_metrics``, e.g. ROUGE-L) fill in what that record lacks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from entrenar_bench.aggregate.collect import Collection
from entrenar_bench.aggregate.metrics import ACCURACY, TEACHER_PREFIX, Metric
from entrenar_bench.aggregate.stats import describe
from entrenar_bench.files import read_data
from entrenar_bench.run.record import is_finite_number

RECORD = "teacher.json"  # run/model_cache.py: <cache>/teachers/<key>/<TEACHER.stem>.json (a test holds them equal)


def _number(value: Any) -> float | None:
    return float(value) if is_finite_number(value) else None


def _record(cache: str, problems: list[str]) -> dict[str, Any] | None:
    """The teacher's record (its numbers finite or None), or None with a problem noted."""
    try:
        record = json.loads(read_data(Path(cache) / RECORD))
        if not isinstance(record, dict):
            raise ValueError("not a mapping")
    except (OSError, ValueError, RecursionError) as e:
        problems.append(f"{Path(cache) / RECORD}: teacher record unreadable ({type(e).__name__}); no reference")
        return None
    metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
    numbers = {k: _number(v) for k, v in metrics.items() if isinstance(k, str)}
    seconds = record.get("measured_s", record.get("time_s"))
    return {"metrics": {"accuracy": None, "loss": None, **numbers}, "time_s": _number(seconds)}


def _measured_by_runs(runs: pd.DataFrame) -> dict[str, float]:
    """The mean of each metric the runs measured of their teacher (``teacher_metric:<name>`` columns)."""
    columns = [c for c in runs.columns if c.startswith(TEACHER_PREFIX) and runs[c].notna().any()]
    return {c[len(TEACHER_PREFIX):]: float(runs[c].mean()) for c in columns}


def teacher_reference(collection: Collection, metric: Metric = ACCURACY) -> dict[str, Any] | None:
    """The teachers the completed runs used: seeds, each one's test accuracy and ``metric`` (and its validation
    value), and their n, mean, std and CI (``metric``: the deciding metric's, where the teachers recorded it)."""
    done = collection.completed
    if "teacher_cache" not in done or done["teacher_cache"].dropna().empty:
        return None
    used = done.dropna(subset=["teacher_cache"]).drop_duplicates("teacher_cache")
    teachers = []
    for cache, seed in zip(used["teacher_cache"], used["teacher_seed"]):
        record = _record(str(cache), collection.problems)
        if record:
            by_runs = _measured_by_runs(done[done["teacher_cache"] == cache])
            metrics = {**by_runs, **{k: v for k, v in (record.get("metrics") or {}).items() if v is not None}}
            teachers.append({"seed": int(seed) if pd.notna(seed) else None, "cache": str(cache),
                             "accuracy": metrics.get("accuracy"), "loss": metrics.get("loss"),
                             "time_s": record.get("time_s"), "metric": metrics.get(metric.name),
                             "val_metric": metrics.get(metric.val_name)})
    if not teachers:
        return None
    accuracies = [t["accuracy"] for t in teachers if t["accuracy"] is not None]
    return {"teachers": teachers, "seeds": sorted(t["seed"] for t in teachers if t["seed"] is not None),
            "accuracy": describe(accuracies), "loss": describe([t["loss"] for t in teachers if t["loss"] is not None]),
            "metric": {**metric.as_dict(), **describe([t["metric"] for t in teachers if t["metric"] is not None])},
            "val_metric": describe([t["val_metric"] for t in teachers if t["val_metric"] is not None]),
            "time_s": describe([t["time_s"] for t in teachers if t["time_s"] is not None])}


def rests_on(reference: dict[str, Any] | None) -> str | None:
    """The sentence that says how far the conclusions generalise over teachers."""
    if not reference:
        return None
    seeds = ", ".join(str(s) for s in reference["seeds"])
    k = len(reference["teachers"])
    if k == 1:
        return (f"Conclusions rest on 1 teacher (teacher.seed {seeds}): they hold for this teacher; "
                "--teachers K crosses K teachers with the seeds to generalise over teachers.")
    return (f"Conclusions rest on {k} teachers (teacher.seed {seeds}): the teacher is a random factor, so "
            "groups that use one are summarised and tested on their per-teacher means.")


def reference_line(reference: dict[str, Any] | None) -> str | None:
    """``Teacher (reference, not tested): test accuracy 0.9900.``, in the deciding metric."""
    if not reference or reference["metric"]["mean"] is None:
        return None
    a = reference["metric"]
    k = len(reference["teachers"])
    spread = f" ± {a['std']:.4f} over {k} teachers" if k > 1 and a["std"] is not None else ""
    return f"Teacher (reference, not tested): test {a['name']} {a['mean']:.4f}{spread}."
