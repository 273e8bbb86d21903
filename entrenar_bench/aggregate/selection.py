"""Which configuration is best: chosen on validation accuracy, reported (and tested) on test accuracy.

Choosing the winner on the test set and then testing it on the same numbers inflates every
"significant" (the winner's curse), so every "best" in the reports and in ``recommend`` goes through
:func:`rank`, with one rule:

    the highest mean validation accuracy; ties (within 1e-9) go to the lower mean validation loss,
    then to the first in the report's own order (the lower parameter value, the strategy listed
    first, the cheaper configuration).

Candidates with no validation accuracy rank last (a report built from test accuracy alone says so).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

SELECTED_BY = "val_accuracy"
TIE_RULE = ("highest mean validation accuracy; ties (within 1e-9) go to the lower mean validation loss, "
            "then to the first in the table's order")
TIE_DIGITS = 9


def _known(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def selection_key(val_accuracy: float | None, val_loss: float | None) -> tuple[float, float]:
    """Sort key of the rule (smaller is better); the table's order breaks what is left (a stable sort)."""
    accuracy = -round(val_accuracy, TIE_DIGITS) if _known(val_accuracy) else math.inf
    loss = round(val_loss, TIE_DIGITS) if _known(val_loss) else math.inf
    return accuracy, loss


def rank(candidates: Sequence[T], val_accuracy: Callable[[T], float | None],
         val_loss: Callable[[T], float | None] = lambda _: None) -> list[T]:
    """``candidates`` (in the table's order) from best to worst by the rule above."""
    return sorted(candidates, key=lambda c: selection_key(val_accuracy(c), val_loss(c)))
