"""``--runs auto``'s design: the looks (runs per group at each) and the error rate, checked before anything runs.

Light on purpose (no scipy): the command line and the API build it before a sweep starts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from entrenar_bench.errors import UsageError

SPENDING = ("obf", "pocock")  # Lan–DeMets O'Brien–Fleming-type, Pocock-type (aggregate/boundaries.py)


@dataclass(frozen=True)
class Design:
    """``--runs auto``'s settings; :meth:`check` refuses impossible ones in one line."""

    max_runs: int
    min_runs: int = 3
    look_every: int = 1
    mde: float | None = None
    alpha: float = 0.05
    spending: str = "obf"

    def check(self) -> Design:
        if self.min_runs < 2:
            raise UsageError(f"--min-runs must be at least 2 (a t-test needs two runs a group), got {self.min_runs}")
        if self.max_runs < self.min_runs:
            raise UsageError(f"--max-runs {self.max_runs} is below --min-runs {self.min_runs}")
        if self.look_every < 1:
            raise UsageError(f"--look-every must be at least 1, got {self.look_every}")
        if self.mde is not None and not (math.isfinite(self.mde) and self.mde > 0):
            raise UsageError(f"--mde must be a positive number, got {self.mde}")
        if self.spending not in SPENDING:
            raise UsageError(f"--spending must be one of {', '.join(SPENDING)}, got {self.spending!r}")
        return self

    @property
    def looks(self) -> list[int]:
        """Runs per group at each look: min, min + every, …, and max last."""
        return sorted({*range(self.min_runs, self.max_runs, self.look_every), self.max_runs})

    @property
    def fractions(self) -> list[float]:
        return [n / self.max_runs for n in self.looks]

    @classmethod
    def from_dict(cls, recorded: dict[str, Any]) -> Design:
        """The design an auto sweep's plan recorded (:meth:`as_dict`; its ``looks`` follow from the rest)."""
        return cls(**{k: v for k, v in recorded.items() if k != "looks"})

    def as_dict(self) -> dict[str, Any]:
        return {"max_runs": self.max_runs, "min_runs": self.min_runs, "look_every": self.look_every,
                "mde": self.mde, "alpha": self.alpha, "spending": self.spending, "looks": self.looks}
