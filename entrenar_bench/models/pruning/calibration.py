"""Calibration blocks: the first ``student.calibration_blocks`` blocks of the data's training split, never a
validation or test block (the data module's ``calibration_inputs``), and their content digest.

A model node that names ``calibration_blocks`` (``conf/student/from_teacher.yaml``) is built with
``calibration=<the data module's calibration_inputs>``, a function ``blocks -> (ids, mask)`` called only
when the pruning asks for activations.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import torch

KEY = "calibration_blocks"  # a model node naming it is given the calibration blocks

Calibration = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


def calibration_kwargs(model_cfg: Mapping[str, Any], datamodule: Any) -> dict[str, Calibration]:
    """``{"calibration": datamodule.calibration_inputs}`` for a model node that takes calibration blocks."""
    source = getattr(datamodule, "calibration_inputs", None)
    return {"calibration": source} if KEY in model_cfg and source is not None else {}


def calibration_digest(ids: torch.Tensor, mask: torch.Tensor) -> str:
    """SHA-256 of the blocks' ids and target mask (shape included): what the importance was measured on."""
    digest = hashlib.sha256(repr((tuple(ids.shape), str(ids.dtype))).encode())
    digest.update(ids.contiguous().numpy().tobytes())
    digest.update(mask.to(torch.uint8).contiguous().numpy().tobytes())
    return digest.hexdigest()
