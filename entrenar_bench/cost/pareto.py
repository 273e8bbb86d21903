"""Pareto frontier: the points no other point dominates.

Point ``q`` dominates ``p`` when ``q`` is at least as good as ``p`` on every objective and strictly
better on at least one. Exact duplicates do not dominate each other, so both stay on the frontier.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

OBJECTIVES = {"cost": False, "accuracy": True, "memory": False, "time": False}  # name -> maximize?
DEFAULT_OBJECTIVES = ("cost", "accuracy")


def dominates(q: Sequence[float], p: Sequence[float], maximize: Sequence[bool]) -> bool:
    """Whether ``q`` dominates ``p`` (objectives to maximize flagged True, to minimize False)."""
    better = False
    for a, b, up in zip(q, p, maximize):
        if (a < b) if up else (a > b):
            return False
        better |= (a > b) if up else (a < b)
    return better


def non_dominated(values: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[bool]:
    """For each row of objective values, whether it is on the Pareto frontier (O(n²), n is small)."""
    for row in values:
        if len(row) != len(maximize) or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in row):
            raise ValueError(f"every point needs a finite value for each of {len(maximize)} objectives, got {row!r}")
    return [not any(dominates(q, p, maximize) for q in values) for p in values]
