"""How much of the gap between the student's start and the teacher a run closed, in the metric's direction:

    recovery = (m_before − m_after) / (m_before − m_teacher)

for any metric (a lower or a higher better): 0 is where the student started, 1 is the teacher, above 1 beats
it, below 0 is worse than its start. Undefined (None) where a value is missing or the student started at the
teacher's value (no gap to close).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

LEVELS = (0.5, 0.8, 0.9)  # the recovery levels the reports give the tokens to reach


def recovery(before: float | None, after: float | None, teacher: float | None) -> float | None:
    """The module's formula (the direction cancels: both differences change sign together)."""
    values = (before, after, teacher)
    if any(v is None or not math.isfinite(v) for v in values) or before == teacher:
        return None
    return (before - after) / (before - teacher)


def run_recovery(metrics_before: Mapping[str, Any] | None, metrics: Mapping[str, Any],
                 teacher_metrics: Mapping[str, Any] | None, name: str) -> dict[str, Any]:
    """A run's record fields: ``recovery`` on the held-out (test) split's ``name`` (None without a start or a
    teacher) and ``recovery_of``, the values it rests on."""
    before = (metrics_before or {}).get(name)
    teacher = (teacher_metrics or {}).get(name)
    after = metrics.get(name)
    return {"recovery": recovery(before, after, teacher),
            "recovery_of": {"metric": name, "split": "test", "before": before, "after": after, "teacher": teacher}}
