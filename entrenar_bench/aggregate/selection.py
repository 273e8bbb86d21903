"""Which configuration is best: chosen on the deciding metric's validation value, reported (and tested) on its
test value (aggregate/metrics.py says which metric decides and its direction).

Choosing the winner on the test set and then testing it on the same numbers inflates every
"significant" (the winner's curse), so every "best" in the reports and in ``recommend`` goes through
:func:`rank`, with one rule:

    the best mean validation value of the metric (highest accuracy, lowest loss or perplexity); ties
    (within 1e-9) go to the better mean validation value of its tie-breaker (the loss; for a loss or a
    perplexity, the accuracy), then to the first in the report's own order (the lower parameter value,
    the strategy listed first, the cheaper configuration).

Candidates with no validation value rank last (a report built from test values alone says so).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

from entrenar_bench.aggregate.metrics import ACCURACY, Metric, tie_breaker

T = TypeVar("T")

TIE_DIGITS = 9


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _best_first(value: float | None, lower_is_better: bool) -> float:
    if not _known(value):
        return math.inf
    value = round(value, TIE_DIGITS)
    return value if lower_is_better else -value


def selection_key(value: float | None, tie: float | None, metric: Metric = ACCURACY) -> tuple[float, float]:
    """Sort key of the rule (smaller is better); the table's order breaks what is left (a stable sort)."""
    return _best_first(value, metric.lower_is_better), _best_first(tie, tie_breaker(metric).lower_is_better)


def rank(candidates: Sequence[T], value: Callable[[T], float | None],
         tie: Callable[[T], float | None] = lambda _: None, metric: Metric = ACCURACY) -> list[T]:
    """``candidates`` (in the table's order) from best to worst by the rule above: ``value`` gives a candidate's
    mean validation value of ``metric``, ``tie`` that of its tie-breaker."""
    return sorted(candidates, key=lambda c: selection_key(value(c), tie(c), metric))


def tie_rule(metric: Metric = ACCURACY) -> str:
    """The rule in words, for the reports' JSON and text."""
    best = "lowest" if metric.lower_is_better else "highest"
    second = tie_breaker(metric)
    return (f"{best} mean validation {metric.name}; ties (within 1e-9) go to the "
            f"{'lower' if second.lower_is_better else 'higher'} mean validation {second.name}, "
            "then to the first in the table's order")


SELECTED_BY = ACCURACY.val_name  # the rule's column when accuracy decides (classification)
TIE_RULE = tie_rule(ACCURACY)
