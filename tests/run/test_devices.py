"""One run on several devices: which launchers can start its other ranks, checked before anything runs;
placement leaves a multi-device trainer alone; the device count is part of what a run computes."""

from __future__ import annotations

import pytest

from entrenar_bench.errors import ConfigError
from entrenar_bench.run.checks import validate_config
from entrenar_bench.run.placement import device_count, place_job
from entrenar_bench.run.record import computed_config, is_run_invariant


@pytest.mark.parametrize("devices, count", [(1, 1), (2, 2), ("2", 2), ([0, 1], 2), ("0,1", 2),
                                            ("auto", None), (-1, None)])
def test_device_count(devices, count):
    assert device_count(devices) == count


def test_launchers_that_can_start_the_other_ranks(compose_cfg):
    validate_config(compose_cfg("trainer.devices=2", "trainer.strategy=ddp"))  # basic: Lightning re-runs the app
    validate_config(compose_cfg("trainer.devices=2", "launcher=submitit_slurm", "launcher.tasks_per_node=2"))
    with pytest.raises(ConfigError, match="launcher.tasks_per_node=2"):
        validate_config(compose_cfg("trainer.devices=2", "launcher=submitit_slurm"))
    with pytest.raises(ConfigError, match="not launcher=joblib"):
        validate_config(compose_cfg("trainer.devices=2", "launcher=joblib"))


def test_placement_leaves_a_multi_device_trainer_alone(compose_cfg):
    cfg = compose_cfg("trainer.devices=2", "trainer.strategy=ddp")
    assert place_job(cfg).trainer.devices == 2


def test_device_count_and_checkpointing_in_the_config_hash():
    """N devices train on N-times larger batches (a different computation); checkpointing changes nothing."""
    assert not is_run_invariant("trainer.devices")
    assert is_run_invariant("train.checkpoint_every") and is_run_invariant("train.keep_checkpoints")
    config = {"trainer": {"devices": 2}, "train": {"epochs": 5, "checkpoint_every": 1}}
    assert computed_config(config) == {"trainer": {"devices": 2}, "train": {"epochs": 5}}
