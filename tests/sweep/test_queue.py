"""A sweep's jobs in SLURM's queue, as squeue reports them: the progress line's summary, reasons that
never clear, and when a still-waiting multirun waits on jobs that already left the queue."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from entrenar_bench.errors import UsageError
from entrenar_bench.sweep.queue import SlurmQueue, never_clears, slurm_queue

LAUNCHER = OmegaConf.create({"name": "submitit_slurm", "partition": None, "cpus_per_task": 8, "mem_gb": 2,
                             "gpus_per_node": None, "timeout_min": 60})


def _queue(tmp_path, *folders: str, **kwargs) -> SlurmQueue:
    for name in folders:
        (tmp_path / ".submitit" / name).mkdir(parents=True)
    return SlurmQueue(tmp_path, LAUNCHER, **kwargs)


def test_job_ids_are_array_tasks_and_leave_out_earlier_launches(tmp_path):
    queue = _queue(tmp_path, "7_0", "7_1")  # a first launch of the sweep
    for name in ("12", "12_0", "12_1", "12_10", "13", ".submission_file_x.sh"):
        (tmp_path / ".submitit" / name).mkdir()
    assert queue.job_ids() == ["12_0", "12_1", "12_10", "13"]


@pytest.mark.parametrize("reason, never", [("PartitionConfig", True), ("QOSMaxCpuPerJobLimit", True),
                                           ("Resources", False), ("Priority", False), ("BeginTime", False)])
def test_reasons_that_never_clear(reason, never):
    assert never_clears(reason) is never


def test_summary_counts_running_and_queued_with_the_reasons(tmp_path):
    queue = _queue(tmp_path)
    queue.states = {"1_0": ("RUNNING", "None"), "1_1": ("PENDING", "Resources"), "1_2": ("PENDING", "Resources"),
                    "1_3": ("COMPLETED", "None")}
    assert queue.summary() == "1 running, 2 queued (Resources)"
    queue.states = {}
    assert queue.summary() == ""


def test_a_request_that_never_fits_is_an_error_naming_the_keys(tmp_path, monkeypatch):
    queue = _queue(tmp_path)
    cancelled = []
    monkeypatch.setattr(queue, "cancel", lambda: cancelled.append(True))
    queue.states = {"1_0": ("PENDING", "PartitionConfig"), "1_1": ("PENDING", "PartitionConfig")}
    with pytest.raises(UsageError, match=r"never start 2 .*PartitionConfig.*8 CPUs.*launcher.cpus_per_task") as error:
        queue.check()
    assert cancelled and "\n" not in str(error.value)
    queue.states = {"1_0": ("PENDING", "Resources")}
    queue.check()  # waits


def test_drained_once_every_job_has_left_the_queue(tmp_path):
    queue = _queue(tmp_path, settle_s=0.0)
    (tmp_path / ".submitit" / "5_0").mkdir(parents=True)  # submitted by this launch
    queue.states = {"5_0": ("RUNNING", "None")}
    assert not queue.drained()
    queue.states = {"5_0": ("CANCELLED", "None")}
    assert queue.drained() and queue.ended() == {"5_0": "CANCELLED"}


def test_submission_refused_by_sbatch(tmp_path):
    queue = _queue(tmp_path)
    (tmp_path / "sweep.log").write_text("Traceback\nsbatch: error: Memory specification can not be satisfied\n")
    with pytest.raises(UsageError, match="SLURM refused .*Memory specification"):
        queue.check_submission()


def test_only_slurm_sweeps_are_watched(tmp_path):
    assert slurm_queue(OmegaConf.create({"launcher": {"name": "joblib"}}), tmp_path) is None
    assert slurm_queue(OmegaConf.create({"launcher": LAUNCHER}), tmp_path) is not None
