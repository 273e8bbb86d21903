"""The held-out curve against tokens seen: the task's primary metric on a fixed, small evaluation subset (the
first ``train.eval_rows`` validation rows), every ``train.eval_every_tokens`` training tokens.

Each point is one row of the run's learning curve (``metrics.csv``, the same file as the per-epoch rows, through
the same loggers): ``tokens`` (training tokens seen, ``training/budget.py``), ``heldout/<metric>`` and the
``epoch`` it fell in (so a resumed run's curve is joined as the per-epoch rows are). The first point is taken at
0 tokens (the start the run is judged against), then one at the first step whose count reaches each multiple of
N, and the last at the end of the fit. The subset never changes within a run or across runs of the same data,
so curves of different runs are comparable point by point; its cost is ``eval_rows`` rows forward, without
gradients, a point.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from entrenar_bench.training.budget import TokenCounter
from entrenar_bench.training.curve_names import PREFIX, TOKENS


def evaluation_subset(loader: Iterable, rows: int) -> list[tuple]:
    """The first ``rows`` rows of ``loader``'s batches (tuples of tensors), in order, as batches."""
    out, taken = [], 0
    for raw in loader:
        keep = min(rows - taken, len(raw[0]))
        out.append(tuple(part[:keep] for part in raw))
        taken += keep
        if taken >= rows:
            break
    return out


@torch.no_grad()
def subset_metric(task: Any, model: torch.nn.Module, batches: Sequence[tuple], device: torch.device) -> float:
    """The task's primary metric of ``model`` over ``batches`` (token means for a language model), in eval mode;
    the model's mode is left as it was."""
    metrics = task.make_metrics(False).to(device)
    was_training = model.training
    model.eval()
    for raw in batches:
        batch = task.batch(tuple(part.to(device) for part in raw))
        task.update_metrics(metrics, task.forward(model, batch.inputs).logits, batch, None)
    model.train(was_training)
    return float(task.results(metrics)[task.primary_metric.name])


class HeldOutCurve(Callback):
    """Logs the held-out points of the module's student (see the module) to the trainer's loggers."""

    def __init__(self, counter: TokenCounter, every: int, batches: Sequence[tuple]):
        if every < 1:
            raise ValueError(f"train.eval_every_tokens must be at least 1, got {every}")
        self.counter = counter
        self.every = every
        self.batches = list(batches)
        self.next = 0
        self.last: int | None = None

    def point(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        seen = self.counter.seen(module) * trainer.world_size
        value = subset_metric(module.task, module.student, self.batches, module.device)
        row = {TOKENS: float(seen), f"{PREFIX}{module.task.primary_metric.name}": value,
               "epoch": trainer.current_epoch}  # an int, as Lightning logs it (join_curve reads it so)
        for logger in trainer.loggers:
            logger.log_metrics(row, step=trainer.global_step)
        self.last = seen
        self.next = (seen // self.every + 1) * self.every

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.counter.seen(pl_module) == 0:
            self.point(trainer, pl_module)
        else:  # resumed: the earlier points are in the curve already
            self.next = (self.counter.seen(pl_module) * trainer.world_size // self.every + 1) * self.every

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        if self.counter.seen(pl_module) * trainer.world_size >= self.next:
            self.point(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.last != self.counter.seen(pl_module) * trainer.world_size:
            self.point(trainer, pl_module)
