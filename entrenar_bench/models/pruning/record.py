"""What a run records of its student's pruning: ``model.config.pruning`` as ``from_teacher`` set it (method,
kept layers and their scores, widths, kept key/value groups, parameters, calibration blocks), or None for a
student that was not pruned from a teacher."""

from __future__ import annotations

from typing import Any

from torch import nn


def pruning_record(model: nn.Module) -> dict[str, Any] | None:
    pruning = getattr(getattr(model, "config", None), "pruning", None)
    return dict(pruning) if isinstance(pruning, dict) else None
