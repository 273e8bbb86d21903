"""Checkpoint files are written atomically; the random generators a resumed run needs come back exactly."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from entrenar_bench.training.checkpoints import AtomicCheckpointIO, EpochCheckpoint, rng_state, set_rng_state


def _draws() -> tuple:
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_rng_state_round_trip():
    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    state = rng_state()
    first = _draws()
    _draws()  # move every generator on
    set_rng_state(state)
    assert _draws() == first


def test_rng_state_survives_a_weights_only_load(tmp_path):
    """Lightning loads checkpoints with ``weights_only``: the saved generator state must be plain data."""
    AtomicCheckpointIO().save_checkpoint({"rng": [rng_state()]}, tmp_path / "c.ckpt")
    loaded = torch.load(tmp_path / "c.ckpt", weights_only=True)
    first = _draws()
    set_rng_state(loaded["rng"][0])
    assert _draws() == first


def test_checkpoint_io_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "run.ckpt"
    AtomicCheckpointIO().save_checkpoint({"epoch": 1}, path)

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError):
        AtomicCheckpointIO().save_checkpoint({"epoch": 2}, path)
    assert torch.load(path, weights_only=True) == {"epoch": 1}  # the old checkpoint, whole
    assert [p.name for p in path.parent.iterdir()] == ["run.ckpt"]  # no temporary file left


def test_epoch_checkpoint_needs_a_positive_interval(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        EpochCheckpoint(tmp_path / "c.ckpt", 0)
