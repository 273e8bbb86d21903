"""Mid-run checkpoints through ``run()``: a run stopped part-way resumes from its last checkpoint and ends
exactly where an uninterrupted run of the same seed ends; checkpoints go when the run completes."""

from __future__ import annotations

import pytest

from entrenar_bench.distill.module import DistillationModule
from entrenar_bench.errors import ConfigError
from entrenar_bench.run.app import RunFailed, run
from entrenar_bench.run.checks import validate_config
from entrenar_bench.run.record import CHECKPOINT_DIR, read_result

# The student alone (no teacher to train), 6 epochs, a checkpoint every 2: stopped in epoch 5, it resumes at 4.
RUN = ["distill=none", "train.epochs=6", "train.checkpoint_every=2", "seed=3"]


class Preempted(Exception):
    """Stands for the kill: raised as epoch 5 (index 4) starts, after the checkpoint of epoch 4."""


def _stop_in_epoch_5(monkeypatch) -> None:
    original = DistillationModule.on_train_epoch_start

    def stop(self):
        if self.current_epoch == 4:
            raise Preempted("stopped")
        original(self)

    monkeypatch.setattr(DistillationModule, "on_train_epoch_start", stop)


def test_stopped_run_resumes_from_its_checkpoint_with_the_same_result(compose_cfg, tmp_path, monkeypatch):
    reference = run(compose_cfg(*RUN), tmp_path / "uninterrupted")
    assert reference["resumed_from_epoch"] is None

    with monkeypatch.context() as patch:
        _stop_in_epoch_5(patch)
        with pytest.raises(RunFailed, match="Preempted"):
            run(compose_cfg(*RUN), tmp_path / "stopped")
    assert list((tmp_path / "stopped" / CHECKPOINT_DIR).glob("*.ckpt")), "no checkpoint left by the stopped run"

    resumed = run(compose_cfg(*RUN), tmp_path / "stopped")
    assert resumed["status"] == "completed" and resumed["resumed_from_epoch"] == 4
    assert read_result(tmp_path / "stopped")["resumed_from_epoch"] == 4
    # Same weights, optimizer, schedule, batch order and dropout: exactly the same numbers.
    assert resumed["metrics"] == reference["metrics"]
    assert resumed["config_hash"] == reference["config_hash"]
    curve = "metrics.csv"  # one learning curve over all epochs, as if the run had never stopped
    assert (tmp_path / "stopped" / curve).read_text() == (tmp_path / "uninterrupted" / curve).read_text()
    assert not (tmp_path / "stopped" / CHECKPOINT_DIR).exists(), "checkpoints outlived the completed run"


def test_checkpoints_are_kept_when_asked(compose_cfg, tmp_path):
    record = run(compose_cfg(*RUN, "train.keep_checkpoints=true"), tmp_path)
    assert record["status"] == "completed"
    assert len(list((tmp_path / CHECKPOINT_DIR).glob("*.ckpt"))) == 1
    assert not list((tmp_path / CHECKPOINT_DIR).glob(".*.tmp")), "an atomic write left its temporary file"


def test_checkpointing_does_not_change_the_config_hash(compose_cfg, tmp_path):
    """A sweep resumed with checkpoints switched on finds the runs it completed without them."""
    plain = run(compose_cfg("distill=none", "seed=3", "train.epochs=2"), tmp_path)
    again = run(compose_cfg("distill=none", "seed=3", "train.epochs=2", "train.checkpoint_every=1"), tmp_path)
    assert again["started_at"] == plain["started_at"]  # found completed, not rerun


@pytest.mark.parametrize("value", ["0", "-2"])
def test_checkpoint_every_must_be_positive(compose_cfg, value):
    with pytest.raises(ConfigError, match="train.checkpoint_every must be >= 1"):
        validate_config(compose_cfg(f"train.checkpoint_every={value}"))


def test_a_resumed_run_keeps_its_token_count_and_its_curve_against_tokens(compose_cfg, tmp_path, monkeypatch):
    """The tokens of the epochs before the checkpoint are in it: the resumed run records the same tokens_seen,
    and its held-out points against tokens are those of the run that never stopped."""
    budgeted = [*RUN, "train.eval_every_tokens=500", "train.eval_rows=32"]
    reference = run(compose_cfg(*budgeted), tmp_path / "uninterrupted")
    with monkeypatch.context() as patch:
        _stop_in_epoch_5(patch)
        with pytest.raises(RunFailed, match="Preempted"):
            run(compose_cfg(*budgeted), tmp_path / "stopped")
    resumed = run(compose_cfg(*budgeted), tmp_path / "stopped")
    assert resumed["resumed_from_epoch"] == 4 and resumed["tokens_seen"] == reference["tokens_seen"] > 0
    assert resumed["flops"] == reference["flops"]
    curve = "metrics.csv"
    assert (tmp_path / "stopped" / curve).read_text() == (tmp_path / "uninterrupted" / curve).read_text()
    assert "heldout/accuracy" in (tmp_path / "stopped" / curve).read_text()
