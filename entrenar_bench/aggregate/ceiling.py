"""The ceiling beside the results, where the data's true distribution is known (the embedded language-model
task, ``data/markov.py``): the Bayes-optimal next-token accuracy of the source on the test split, and the
teacher's own accuracy and KL to the truth, as recorded by the sweep's completed runs."""

from __future__ import annotations

from typing import Any

from entrenar_bench.aggregate.collect import Collection
from entrenar_bench.run.record import CorruptRecord, is_finite_number, read_result


def _finite(value: Any) -> Any:
    return value if is_finite_number(value) else None


def ceiling(collection: Collection, limit: int = 20) -> dict[str, Any] | None:
    """``{"bayes_accuracy", "teacher_accuracy", "teacher_truth_kl"}`` from the first completed runs (at most
    ``limit`` read) that recorded them; None where none recorded a Bayes-optimal accuracy."""
    found: dict[str, Any] = {"bayes_accuracy": None, "teacher_accuracy": None, "teacher_truth_kl": None}
    for job in collection.completed["job"].head(limit):
        try:
            record = read_result(collection.sweep_dir / str(job)) or {}
        except CorruptRecord:
            continue
        metrics = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
        teacher = record.get("teacher") if isinstance(record.get("teacher"), dict) else {}
        trained = teacher.get("metrics") if isinstance(teacher.get("metrics"), dict) else {}
        if found["bayes_accuracy"] is None:
            found["bayes_accuracy"] = _finite(metrics.get("bayes_accuracy"))
        if found["teacher_accuracy"] is None and _finite(teacher.get("accuracy")) is not None:
            found.update(teacher_accuracy=teacher["accuracy"], teacher_truth_kl=_finite(trained.get("truth_kl")))
        if None not in (found["bayes_accuracy"], found["teacher_accuracy"]):
            break
    return found if found["bayes_accuracy"] is not None else None


def ceiling_line(info: dict[str, Any] | None) -> list[str]:
    """``Ceiling (Bayes-optimal accuracy of the source): 0.518; teacher: 0.493`` (no line without a ceiling)."""
    if not info:
        return []
    line = f"Ceiling (Bayes-optimal accuracy of the source): {info['bayes_accuracy']:.3f}"
    if info["teacher_accuracy"] is not None:
        line += f"; teacher: {info['teacher_accuracy']:.3f}"
    if info["teacher_truth_kl"] is not None:
        line += f" (KL to the truth {info['teacher_truth_kl']:.3f} nats/token)"
    return [line]
