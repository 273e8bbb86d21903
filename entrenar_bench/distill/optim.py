"""The optimiser and learning-rate schedule of a training run, from the ``optim`` config group.

``optim.optimizer`` is a partial ``_target_`` (``torch.optim.Adam``, ``torch.optim.AdamW``, ...) given the
parameters, ``lr`` and ``weight_decay`` of the run's training settings (``optim.weight_decay``, when set,
replaces the latter). ``optim.scheduler``:

- ``cosine_epoch``: ``CosineAnnealingLR(T_max=epochs)`` stepped once an epoch (the default; no warm-up);
- ``cosine`` / ``linear``: per step, linear warm-up over ``optim.warmup_steps`` then cosine or linear decay to 0
  over the run's steps (transformers' ``get_cosine_schedule_with_warmup`` / ``get_linear_schedule_with_warmup``);
- ``constant``: per step, linear warm-up then constant.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from hydra.utils import instantiate

from entrenar_bench.distill.settings import SCHEDULERS

DEFAULT_OPTIM = {"optimizer": {"_target_": "torch.optim.Adam", "_partial_": True},
                 "scheduler": "cosine_epoch", "warmup_steps": 0}


def _per_step(name: str, optimizer: torch.optim.Optimizer, warmup: int, total: int):
    from transformers import (get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup,
                              get_linear_schedule_with_warmup)

    if name == "constant":
        return get_constant_schedule_with_warmup(optimizer, warmup)
    schedule = get_cosine_schedule_with_warmup if name == "cosine" else get_linear_schedule_with_warmup
    return schedule(optimizer, warmup, max(total, 1))


def optimization(optim: Mapping[str, Any] | None, params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float,
                 epochs: int, total_steps: int) -> dict[str, Any]:
    """Lightning's ``configure_optimizers`` answer: the optimiser and its schedule with ``interval``
    (``epoch`` or ``step``: when the training loop steps it)."""
    optim = dict(DEFAULT_OPTIM if optim is None else optim)
    if optim.get("weight_decay") is not None:
        weight_decay = optim["weight_decay"]
    optimizer = instantiate(optim["optimizer"])(list(params), lr=lr, weight_decay=weight_decay)
    name, warmup = optim.get("scheduler", "cosine_epoch"), int(optim.get("warmup_steps", 0))
    if name not in SCHEDULERS or (name == SCHEDULERS[0] and warmup):
        raise ValueError(f"optim: no schedule {name!r} with {warmup} warm-up steps (run/checks.py refuses it first)")
    if name == "cosine_epoch":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
    scheduler = _per_step(name, optimizer, warmup, total_steps)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
