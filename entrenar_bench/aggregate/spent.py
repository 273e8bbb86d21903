"""What a run spent and where it started, as columns of the collection: tokens, FLOPs by role (``run/compute.py``),
recovery (``run/recovery.py``), the trivial baselines of a language model (``tasks/baselines.py``), the teacher's
value on the held-out curve's subset, and the held-out metrics before training (``before:<name>``).

Every value is a finite number or None: a damaged or older record gives None, never an error.
"""

from __future__ import annotations

from typing import Any

from entrenar_bench.aggregate.metrics import BEFORE_PREFIX
from entrenar_bench.run.record import field_of, is_finite_number

FIELDS = {  # column: the record's field
    "tokens_seen": "tokens_seen", "flops": "flops.total", "flops_student": "flops.student",
    "flops_teacher": "flops.teacher", "flops_generation": "flops.generation", "recovery": "recovery",
    "baseline_uniform": "baselines.uniform", "baseline_unigram": "baselines.unigram",
    "baseline_val_unigram": "baselines.val_unigram", "curve_teacher": "curve.teacher",
}


def _number(value: Any) -> float | None:
    return float(value) if is_finite_number(value) else None


def spent_columns(record: dict[str, Any]) -> dict[str, float | None]:
    """The module's columns of one record (all None for an empty one)."""
    columns = {column: _number(field_of(record, key)) for column, key in FIELDS.items()}
    before = record.get("metrics_before") if isinstance(record.get("metrics_before"), dict) else {}
    columns.update({f"{BEFORE_PREFIX}{k}": _number(v) for k, v in before.items() if isinstance(k, str)})
    return columns
