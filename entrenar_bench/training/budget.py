"""A run's length in tokens (``train.tokens``) instead of epochs, and the count of tokens it trained on.

Tokens are *target tokens*: the positions whose loss the student is trained on (next-token targets for a
language model; one per example for a classifier), counted from the batches the student actually saw — its
data's batches and, on-policy, the batches of its own continuations.

With ``train.tokens`` = D set, the run takes

    steps  = ⌈D / (batch_size · t̄)⌉      t̄: the mean target tokens of a training row
    epochs = ⌈steps / batches_per_epoch⌉

``train.epochs`` is then not used (the record gives the epochs the budget asked for), and the fit stops at the
first step whose count reaches D (:class:`TokenBudget`), so every run of a given D sees D tokens plus less
than one batch, whatever its batch size or strategy. The learning-rate schedule spans those steps (per-epoch
schedules: those epochs). Without ``train.tokens`` a run trains ``train.epochs`` epochs as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback


@dataclass(frozen=True)
class Length:
    """How long a run trains: ``epochs`` (Lightning's ``max_epochs``) and ``steps`` (``max_steps``; -1: whole
    epochs), and the token target (None: a budget in epochs)."""

    epochs: int
    steps: int = -1
    tokens: int | None = None

    def as_record(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "steps": None if self.steps < 0 else self.steps, "epochs": self.epochs}


def run_length(epochs: int, tokens: int | None, tokens_per_row: float, batch_size: int,
               batches_per_epoch: int) -> Length:
    """The length of a run of ``epochs``, or of ``tokens`` target tokens where given (the module's formula)."""
    if tokens is None:
        return Length(epochs=epochs)
    if tokens_per_row <= 0:
        raise ValueError("train.tokens: the training rows hold no target tokens")
    steps = math.ceil(tokens / (batch_size * tokens_per_row))
    return Length(epochs=math.ceil(steps / max(1, batches_per_epoch)), steps=steps, tokens=tokens)


def tokens_trained(module: Any) -> int:
    """Target tokens of the module's training steps in this process: its data's and, on-policy, its own
    continuations' (``DistillationModule.train_targets`` and ``generated_tokens``)."""
    return int(getattr(module, "train_targets", 0)) + int(getattr(module, "generated_tokens", 0))


class TokenCounter(Callback):
    """Counts the tokens a fit trains on (``seen``), across a resume (the count is saved in the checkpoint), and
    stops the fit at the first step whose count reaches ``limit`` (None: never)."""

    def __init__(self, limit: int | None = None):
        self.limit = limit
        self.before = 0  # tokens of the epochs a resumed run found done

    def seen(self, module: Any) -> int:
        return self.before + tokens_trained(module)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        """On several devices each rank counts its own share; the ranks see equal shares, so the total is the
        count times the number of ranks."""
        if self.limit is not None and self.seen(pl_module) * trainer.world_size >= self.limit:
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        module = getattr(self, "_module", None)
        return {"seen": self.seen(module) if module is not None else self.before}

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._module = pl_module

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.before = int(state_dict.get("seen", 0))
