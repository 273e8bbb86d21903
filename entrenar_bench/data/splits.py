"""How many sequences go to each split (no torch: the pre-launch checks use it too)."""

from __future__ import annotations

VAL_FRACTION = TEST_FRACTION = 0.1  # the token modules' defaults


def split_sizes(total: int, val_fraction: float, test_fraction: float) -> tuple[int, int, int]:
    """``(train, val, test)``: ``round(total · fraction)`` for val and test, the rest for training."""
    n_val, n_test = round(total * val_fraction), round(total * test_fraction)
    return total - n_val - n_test, n_val, n_test
