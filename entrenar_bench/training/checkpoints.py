"""Mid-run checkpoints: a run killed or pre-empted part-way resumes where its last checkpoint left off and
ends with the same metrics as a run that was never interrupted.

Every ``every`` epochs the whole training state is saved to one file, atomically (temporary file, fsync,
rename: a kill never leaves half a checkpoint). Lightning's checkpoint holds the weights, the optimizer and
LR-scheduler states and the loop counters; the random-number generators (batch order, dropout,
augmentation) are added here, one set per rank, because Lightning does not restore them.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO

from entrenar_bench.files import write_atomic


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint files, written like every record of this project (``files.write_atomic``)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        write_atomic(Path(path), lambda f: torch.save(checkpoint, f))


def rng_state() -> dict[str, Any]:
    """This process's generators: torch (CPU and CUDA), NumPy and Python's ``random``."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss),
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])


class EpochCheckpoint(Checkpoint):
    """Saves the training state to ``path`` after every ``every``-th epoch (never when ``every`` is None: a
    run resumed from a checkpoint that saves no more).

    A ``Checkpoint`` callback runs after the module's own end-of-epoch hook, so the saved LR schedule has
    already taken this epoch's step. ``resumed_from_epoch`` is the number of epochs a resumed run found done.
    """

    def __init__(self, path: Path, every: int | None):
        if every is not None and every < 1:
            raise ValueError(f"train.checkpoint_every must be at least 1 epoch, got {every}")
        self.path = Path(path)
        self.every = every
        self.resumed_from_epoch: int | None = None
        self.epochs_done = 0

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.every and (trainer.current_epoch + 1) % self.every == 0:
            self.epochs_done = trainer.current_epoch + 1
            trainer.save_checkpoint(self.path)

    def state_dict(self) -> dict[str, Any]:
        """Called on every rank while the checkpoint is assembled: each rank's generators are gathered."""
        states = [rng_state()]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            states = [None] * dist.get_world_size()
            dist.all_gather_object(states, rng_state())
        return {"epochs_done": self.epochs_done, "rng": states}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restored before the first resumed epoch draws its batch order."""
        self.resumed_from_epoch = int(state_dict["epochs_done"])
        states = state_dict["rng"]
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        set_rng_state(states[rank] if rank < len(states) else states[0])


def read_curve(log_dir: Path | None) -> str:
    """The learning curve (``metrics.csv``) a stopped run left, before a resumed fit rewrites the file."""
    try:
        return (Path(log_dir) / "metrics.csv").read_text() if log_dir is not None else ""
    except OSError:
        return ""


def join_curve(log_dir: Path | None, earlier: str, resumed_from_epoch: int | None) -> None:
    """Put the stopped run's rows for the epochs the checkpoint holds (those before ``resumed_from_epoch``)
    back in front of the resumed run's rows: one curve, as if the run had never stopped."""
    if log_dir is None or not earlier or not resumed_from_epoch:
        return
    path = Path(log_dir) / "metrics.csv"
    rows = [row for row in csv.DictReader(io.StringIO(earlier)) if int(row["epoch"]) < resumed_from_epoch]
    later = list(csv.DictReader(io.StringIO(read_curve(log_dir))))
    fields = list(dict.fromkeys([*(later[0] if later else {}), *(rows[0] if rows else {})]))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fields, restval="")
    writer.writeheader()
    writer.writerows(rows + later)
    write_atomic(path, lambda f: f.write(out.getvalue().encode()))
