"""The LightningModule that trains a student (optionally against a frozen teacher)."""

from __future__ import annotations

import math

import lightning as L
import torch
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from entrenar_bench.data.arrays import random_shift
from entrenar_bench.distill.objective import DistillationObjective

EVAL_SPLITS = ("val", "test")


class NonFiniteLoss(FloatingPointError):
    """The training loss became NaN or infinite: the run is recorded as failed."""


class DistillationModule(L.LightningModule):
    """Student + objective trained with Adam and cosine decay; the teacher stays frozen in eval mode.

    The teacher sees exactly the batch the student sees (after augmentation), so its logits
    always line up with the targets. Optimisation is Lightning's manual mode (zero_grad,
    ``manual_backward``, step; the schedule steps once an epoch): the same updates as automatic
    mode, without its per-step closure machinery (~0.15 ms a step, measured).
    """

    def __init__(
        self,
        student: nn.Module,
        objective: DistillationObjective,
        num_classes: int,
        teacher: nn.Module | None = None,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        augment_shift: int = 0,
        teacher_inputs: torch.Tensor | None = None,
    ):
        """``teacher_inputs``: the whole (un-augmented) training set, in the order of the indices
        that the train loader yields as a third batch element; the teacher then runs once over it
        at the start of fitting instead of once per batch."""
        super().__init__()
        self.automatic_optimization = False
        self.student = student
        self.objective = objective
        self.teacher = teacher
        if teacher is not None:
            teacher.requires_grad_(False)
            teacher.eval()
        self.lr = lr
        self.weight_decay = weight_decay
        self.augment_shift = augment_shift
        if teacher_inputs is not None and (teacher is None or augment_shift):
            raise ValueError("teacher outputs can be precomputed only for an un-augmented training set")
        self.teacher_inputs = teacher_inputs
        self.teacher_outputs: tuple[torch.Tensor, list[torch.Tensor]] | None = None
        self.needs_hidden = bool(objective.layer_map or objective.attention_map)
        self.val_curve: dict[str, float] = {}  # the last validation pass, logged with its epoch's training loss
        self.num_classes = num_classes
        self.eval_metrics = nn.ModuleDict({split: self.make_metrics() for split in EVAL_SPLITS})

    def make_metrics(self) -> MetricCollection:
        """The metrics of one held-out split."""
        return MetricCollection(
            {"accuracy": MulticlassAccuracy(num_classes=self.num_classes, average="micro"), "loss": MeanMetric()}
        )

    def train(self, mode: bool = True) -> DistillationModule:
        """Lightning switches the whole module to train mode; the teacher never leaves eval mode."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Student weights plus the objective's projections (part of the student's cost)."""
        return [*self.student.parameters(), *self.objective.parameters()]

    @torch.no_grad()
    def _teacher_forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.needs_hidden:
            return self.teacher.forward_with_hidden(x)
        return self.teacher(x), []

    def on_fit_start(self) -> None:
        if self.teacher_inputs is None:
            return
        chunks = [self._teacher_forward(x.to(self.device)) for x in self.teacher_inputs.split(1024)]
        logits = torch.cat([c[0] for c in chunks])
        hidden = [torch.cat([c[1][i] for c in chunks]) for i in range(len(chunks[0][1]))]
        self.teacher_outputs = (logits, hidden)

    def batch_loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """The objective's weighted loss on one training batch ``(x, y[, index])``."""
        x, y = batch[0], batch[1]
        x = random_shift(x, self.augment_shift)
        if self.needs_hidden:
            logits, hidden = self.student.forward_with_hidden(x)
        else:
            logits, hidden = self.student(x), []
        teacher_logits, teacher_hidden = None, []
        if self.teacher_outputs is not None:
            index = batch[2]
            teacher_logits = self.teacher_outputs[0][index]
            teacher_hidden = [h[index] for h in self.teacher_outputs[1]]
        elif self.teacher is not None:
            teacher_logits, teacher_hidden = self._teacher_forward(x)
        return self.objective(logits, y, teacher_logits, hidden, teacher_hidden)["loss"]

    def training_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> torch.Tensor:
        loss = self.batch_loss(batch)
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        self.epoch_loss = self.epoch_loss + loss.detach()  # not self.log: its per-step cost shows here
        self.epoch_steps += 1
        return loss

    def on_train_epoch_start(self) -> None:
        self.epoch_loss = torch.zeros((), device=self.device)
        self.epoch_steps = 0

    def on_train_epoch_end(self) -> None:
        """Checked once an epoch, not every step, so a GPU never waits on a host sync per step."""
        loss = float(self.epoch_loss)
        if not math.isfinite(loss):
            raise NonFiniteLoss(f"training loss became {loss} in epoch {self.current_epoch}")
        self.lr_schedulers().step()
        self.log_epoch(loss / max(1, self.epoch_steps))

    def log_epoch(self, train_loss: float) -> None:
        """The learning curve, one logged row an epoch (``metrics.csv`` under a CSV logger): the epoch's mean
        training loss and, after the epochs that validated, the validation metrics (``val/<name>``)."""
        self.log("train/loss", train_loss)
        for name, value in self.val_curve.items():
            self.log(f"val/{name}", value)
        self.val_curve = {}

    def validation_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int) -> None:
        self.update_metrics(batch, self.eval_metrics["val"], "val")

    def on_validation_epoch_end(self) -> None:
        """Kept for the epoch's row (logged here, they would make a second row for the same epoch)."""
        metrics = self.eval_metrics["val"]
        self.val_curve = {name: float(value) for name, value in self.split_results(metrics).items()}
        metrics.reset()

    def test_step(self, batch: tuple[torch.Tensor, ...], batch_idx: int, dataloader_idx: int = 0) -> None:
        split = EVAL_SPLITS[dataloader_idx]
        self.update_metrics(batch, self.eval_metrics[split], split)

    def update_metrics(self, batch: tuple[torch.Tensor, ...], metrics: MetricCollection, split: str) -> None:
        """Accuracy and cross-entropy of the student on one held-out batch ``(x, y)``."""
        x, y = batch
        logits = self.student(x)
        metrics["accuracy"].update(logits, y)
        metrics["loss"].update(nn.functional.cross_entropy(logits, y, reduction="none"))

    def split_results(self, metrics: MetricCollection) -> dict[str, torch.Tensor]:
        """What is logged for a held-out split (``<split>/<name>``): the metrics' values."""
        return metrics.compute()

    def on_test_epoch_end(self) -> None:
        for split, metrics in self.eval_metrics.items():
            for name, value in self.split_results(metrics).items():
                self.log(f"{split}/{name}", value, add_dataloader_idx=False)
            metrics.reset()

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.trainable_parameters(), lr=self.lr, weight_decay=self.weight_decay)
        epochs = max(1, self.trainer.max_epochs or 1)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}
