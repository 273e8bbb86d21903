"""The one LightningModule that trains a student, optionally against a frozen teacher, for any task.

The task (``entrenar_bench.tasks``) says how a batch splits (inputs, targets, target mask, row index), how a
model is run (logits, hidden states, attentions), what is measured on a held-out split and what a training
input's augmentation is. The teacher's logits come from its stored outputs (``teacher_signal[split]``, rows by
index: ``teacher_signal/``; a store of at most ``HELD_STORE_BYTES`` is read into memory once, at its first
use, and indexed per batch) where given, else from running it on the (augmented) batch. Hidden states and
attentions come from running it: once over the training rows, held and indexed per batch, where the task allows
it (:attr:`Task.holds_teacher_features`, un-augmented, logits and features at most ``HELD_FEATURE_BYTES``), else
on every batch; either way its outputs line up with the batch (a classic bug in public KD code). Optimisation is
Lightning's manual mode (zero_grad, ``manual_backward``, step; the schedule steps
once an epoch or once a step, ``distill/optim.py``): the same updates as automatic mode, without its per-step
closure machinery (~0.15 ms a step, measured).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
from torch import nn

from entrenar_bench.distill.objective import DistillationObjective, ModelOutputs
from entrenar_bench.distill.optim import optimization

EVAL_SPLITS = ("val", "test")
HELD_STORE_BYTES = 128 << 20  # a teacher store up to this size on disk is held in memory (float16 top-k: 2x that)
HELD_FEATURE_BYTES = 256 << 20  # the teacher's logits and features over the training rows, held up to this size


def _rows(held: Any, index: torch.Tensor) -> Any:
    """Rows ``index`` of held teacher outputs: logits, or a ``TopKTeacher`` (each of its arrays)."""
    return held[index] if isinstance(held, torch.Tensor) else held.rows(index)


class NonFiniteLoss(FloatingPointError):
    """The training loss became NaN or infinite: the run is recorded as failed."""


class DistillationModule(L.LightningModule):
    """Student + objective; the teacher stays frozen in eval mode and is never updated.

    ``teacher_signal``: per split, a reader whose ``logits(index)`` gives the teacher's stored logits of those
    rows (on the CPU, read per batch); ``optim``: the ``optim`` config (None: Adam with per-epoch cosine decay);
    ``augment``: the task's training-time augmentation of inputs, or None.
    """

    def __init__(
        self,
        task: Any,
        student: nn.Module,
        objective: DistillationObjective,
        teacher: nn.Module | None = None,
        teacher_signal: Mapping[str, Any] | None = None,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        optim: Mapping[str, Any] | None = None,
        augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        super().__init__()
        self.automatic_optimization = False
        self.task = task
        self.student = student
        self.objective = objective
        self.teacher = teacher
        if teacher is not None:
            teacher.requires_grad_(False)
            teacher.eval()
        self.teacher_signal = dict(teacher_signal or {})
        if augment is not None and "train" in self.teacher_signal:
            raise ValueError("stored teacher outputs stand in only for an un-augmented training set")
        self.lr = lr
        self.weight_decay = weight_decay
        self.optim = optim
        self.augment = augment
        self.schedule_interval = "epoch"
        self._targets: int | torch.Tensor = 0  # target positions seen in training steps (a tensor: no sync a step)
        self._held: dict[str, tuple[torch.device, Any]] = {}  # split -> its whole store's outputs, on a device
        self.holds_teacher_features = self._can_hold_features()
        self.on_policy = objective.settings.on_policy  # GKD's λ: the share of batches on the student's own samples
        self.timed = objective.settings.generates  # generation and teacher time measured apart (synchronised)
        self.generation_s = self.teacher_s = 0.0
        self.generated_tokens = 0
        self.val_curve: dict[str, float] = {}  # the last validation pass, logged with its epoch's training loss
        with_teacher = task.evaluates_teacher and (teacher is not None or bool(self.teacher_signal))
        self.with_teacher = with_teacher
        self.eval_metrics = nn.ModuleDict({split: task.make_metrics(with_teacher) for split in EVAL_SPLITS})

    @property
    def train_targets(self) -> int:
        """Target positions (tokens, or examples) seen in training steps."""
        return int(self._targets)

    @property
    def reads_train_rows(self) -> bool:
        """Whether training batches must carry their row index (``task.train_loader(indexed=True)``): the teacher's
        stored or held outputs are read by it."""
        return "train" in self.teacher_signal or self.holds_teacher_features

    def _can_hold_features(self) -> bool:
        """Whether the teacher's hidden states / attentions over the training rows are computed once and held (see
        the module docstring): the strategy needs them, the teacher's outputs may be cached, the rows are fixed and
        indexable, and one row's outputs (a forward pass on it) times the rows fit ``HELD_FEATURE_BYTES``."""
        settings, task = self.objective.settings, self.task
        if not (self.teacher is not None and (self.objective.needs_hidden or self.objective.needs_attentions)
                and self.augment is None and settings.teacher_outputs == "cached" and not settings.generates
                and task.holds_teacher_features and task.can_store_train()):
            return False
        inputs = task.split_inputs("train")
        device = next((p.device for p in self.teacher.parameters()), torch.device("cpu"))
        with torch.no_grad():
            one = task.forward(self.teacher, inputs[:1].to(device), self.objective.needs_hidden,
                               self.objective.needs_attentions)
        row_bytes = sum(t.numel() * t.element_size() for t in (one.logits, *one.hidden, *one.attentions))
        return row_bytes * len(inputs) <= HELD_FEATURE_BYTES

    @torch.no_grad()
    def _teacher_features(self) -> ModelOutputs:
        """The teacher's logits, hidden states and attentions over the training rows (``task.store_chunk`` at a
        time)."""
        hidden, attentions = self.objective.needs_hidden, self.objective.needs_attentions
        parts = [self.task.forward(self.teacher, rows.to(self.device), hidden, attentions)
                 for rows in self.task.split_inputs("train").split(self.task.store_chunk)]
        return ModelOutputs(torch.cat([p.logits for p in parts]),
                            [torch.cat(h) for h in zip(*(p.hidden for p in parts))],
                            [torch.cat(a) for a in zip(*(p.attentions for p in parts))])

    def _held_outputs(self, split: str) -> Any:
        """The split's held outputs on this module's device: its whole store (logits, or a ``TopKTeacher``) read
        once where it is small enough, the training rows' features where :attr:`holds_teacher_features`; else None."""
        device, held = self._held.get(split, (None, None))
        if device != self.device:
            held = None
            if split == "train" and self.holds_teacher_features:
                held = self._teacher_features()
            elif getattr(reader := self.teacher_signal[split], "size_bytes", HELD_STORE_BYTES + 1) <= HELD_STORE_BYTES:
                held = reader.read(torch.arange(len(reader))).to(self.device)
            self._held[split] = (self.device, held)
        return held

    def train(self, mode: bool = True) -> DistillationModule:
        """Lightning switches the whole module to train mode; the teacher never leaves eval mode."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Student weights plus the objective's projections (part of the student's cost)."""
        return [*self.student.parameters(), *self.objective.parameters()]

    def _timed(self, work: Callable[[], Any]) -> tuple[Any, float]:
        """``work()`` and its wall time (the device synchronised, so the time is its own)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        result = work()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return result, time.perf_counter() - start

    def teacher_on(self, split: str, batch: Any, hidden: bool = False, attentions: bool = False):
        """The teacher's outputs on ``batch``: stored (or held) outputs where they stand in for it, else a forward
        pass."""
        if split == "train" and self.holds_teacher_features:
            held = self._held_outputs(split)
            return ModelOutputs(held.logits[batch.index], [h[batch.index] for h in held.hidden],
                                [a[batch.index] for a in held.attentions])
        if split in self.teacher_signal and not (hidden or attentions):
            if (held := self._held_outputs(split)) is not None:
                return ModelOutputs(self.task.stored_teacher(_rows(held, batch.index), batch))
            stored = self.teacher_signal[split].read(batch.index.cpu())  # top-k: no dense teacher
            return ModelOutputs(self.task.stored_teacher(stored.to(self.device), batch))
        if self.teacher is None:
            return None
        with torch.no_grad():
            if not (self.timed and self.training):
                return self.task.teacher_forward(self.teacher, batch, hidden, attentions)
            outputs, seconds = self._timed(lambda: self.task.teacher_forward(self.teacher, batch, hidden, attentions))
            self.teacher_s += seconds
            return outputs

    def sampled(self, batch: Any) -> Any:
        """The batch's prefixes continued by the student itself (on-policy): a batch of its own sequences."""
        generated, seconds = self._timed(lambda: self.task.own_samples(self.student, batch, self.objective.settings))
        self.generation_s += seconds
        self.generated_tokens += int(generated.mask.sum())
        return generated

    def on_policy_loss(self, batch: Any) -> torch.Tensor:
        """An on-policy batch's loss, with the weights of every other batch (``DistillationObjective.forward``):
        ``(1−α)·CE`` on the batch's real tokens + ``α·D`` on the student's own continuations of its prefixes,
        scored by the teacher online; at α = 1 the real tokens are not run (their weight is 0)."""
        sampled = self.sampled(batch)
        own = self.task.forward(self.student, sampled.inputs)
        teacher = self.teacher_on("train", sampled)
        real = None
        if self.objective.settings.alpha < 1:
            real = self.task.forward(self.student, batch.inputs)
            self._targets = self._targets + batch.mask.sum()
        return self.objective(real, batch.targets, batch.mask, teacher, sampled=(own, sampled.mask))["loss"]

    def batch_loss(self, raw_batch: Any) -> torch.Tensor:
        """The objective's weighted loss on one training batch; with probability λ (``distill.on_policy``; drawn
        from the global generator, so seeded by the run and restored with its checkpoint) an on-policy batch
        (:meth:`on_policy_loss`): λ changes only where the divergence is measured. λ = 0 draws nothing: the
        run is exactly one without the setting."""
        batch = self.task.batch(raw_batch)
        if self.on_policy and float(torch.rand(())) < self.on_policy:
            return self.on_policy_loss(batch)
        if self.augment is not None:
            batch.inputs = self.augment(batch.inputs)
        hidden, attentions = self.objective.needs_hidden, self.objective.needs_attentions
        student = self.task.forward(self.student, batch.inputs, hidden, attentions)
        teacher = self.teacher_on("train", batch, hidden, attentions)
        self._targets = self._targets + (len(batch.targets) if batch.mask is None else batch.mask.sum())
        return self.objective(student, batch.targets, batch.mask, teacher)["loss"]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self.batch_loss(batch)
        optimizer = self.optimizers()
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        if self.schedule_interval == "step":
            self.lr_schedulers().step()
        self.epoch_loss = self.epoch_loss + loss.detach()  # not self.log: its per-step cost shows here
        self.epoch_steps += 1
        return loss

    def on_train_epoch_start(self) -> None:
        self.epoch_loss = torch.zeros((), device=self.device)
        self.epoch_steps = 0

    def on_train_epoch_end(self) -> None:
        """Checked once an epoch, not every step, so a GPU never waits on a host sync per step."""
        loss = float(self.epoch_loss / max(1, self.epoch_steps))  # the epoch's mean, in float32 as it was logged
        if not math.isfinite(loss):
            raise NonFiniteLoss(f"training loss became {loss} in epoch {self.current_epoch}")
        if self.schedule_interval == "epoch":
            self.lr_schedulers().step()
        self.log_epoch(loss)

    def log_epoch(self, train_loss: float) -> None:
        """The learning curve, one row an epoch in each logger (``metrics.csv`` under a CSV logger): the epoch's mean
        training loss and, after the epochs that validated, the validation metrics (``val/<name>``). Handed to the
        loggers as Lightning's epoch-end logging would (an ``epoch`` column, the step of the epoch's last batch, saved
        at once; rank zero only, by the loggers), not through ``self.log``: its result collection cost ~0.5 ms an
        epoch (measured) and nothing reads these values back."""
        row = {"train/loss": train_loss, **{f"val/{name}": value for name, value in self.val_curve.items()},
               "epoch": self.current_epoch}
        for logger in self.loggers:
            logger.log_metrics(row, step=self.global_step - 1)
            logger.save()
        self.val_curve = {}

    def update_metrics(self, raw_batch: Any, split: str) -> None:
        """The task's metrics of the student (and against the teacher) on one held-out batch."""
        batch = self.task.batch(raw_batch)
        logits = self.task.forward(self.student, batch.inputs).logits
        teacher = self.teacher_on(split, batch) if self.with_teacher else None
        self.task.update_metrics(self.eval_metrics[split], logits, batch, None if teacher is None else teacher.logits)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.update_metrics(batch, "val")

    def on_validation_epoch_end(self) -> None:
        """Kept for the epoch's row (logged here, they would make a second row for the same epoch)."""
        metrics = self.eval_metrics["val"]
        self.val_curve = {name: float(value) for name, value in self.task.results(metrics).items()}
        metrics.reset()

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.update_metrics(batch, EVAL_SPLITS[dataloader_idx])

    def on_test_epoch_end(self) -> None:
        for split, metrics in self.eval_metrics.items():
            for name, value in self.task.results(metrics).items():
                self.log(f"{split}/{name}", value, add_dataloader_idx=False)
            metrics.reset()

    def configure_optimizers(self):
        epochs = max(1, self.trainer.max_epochs or 1)
        config = optimization(self.optim, self.trainable_parameters(), self.lr, self.weight_decay, epochs,
                              int(self.trainer.estimated_stepping_batches))
        self.schedule_interval = config["lr_scheduler"]["interval"]
        return config
