"""One run on two devices on the CPU (Lightning's DDP over gloo, two processes): one completed result.json,
written by rank 0 alone, with the per-device peaks; the other rank makes no run directory of its own, in a
single run and in a multirun (where Lightning's re-run of the script must rerun the job, not the sweep)."""

from __future__ import annotations

import json

from conftest import FAST

DDP = ["trainer.devices=2", "trainer.strategy=ddp", "distill=none", *FAST]


def _result(run_dir) -> dict:
    record = json.loads((run_dir / "result.json").read_text())
    assert record["status"] == "completed", record["error"]
    assert record["devices"] == 2 and len(record["peak_memory_per_device_gb"]) == 2
    assert record["peak_memory_gb"] == max(record["peak_memory_per_device_gb"])
    return record


def test_ddp_run_on_cpu_writes_one_result(run_app, bench_home, tmp_path):
    outputs = bench_home / "outputs" / "run"
    before = set(outputs.glob("*")) if outputs.exists() else set()
    proc = run_app(*DDP, f"hydra.run.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = _result(tmp_path)
    assert 0 < record["metrics"]["accuracy"] <= 1 and record["time_s"] > 0
    assert not (tmp_path / ".hydra" / "config.yaml").read_text().count("train_ddp_process")  # rank 1 wrote no config
    assert (set(outputs.glob("*")) if outputs.exists() else set()) == before  # and no run directory of its own


def test_ddp_runs_in_a_multirun(run_app, tmp_path):
    proc = run_app("-m", *DDP, "seed=0,1", f"hydra.sweep.dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["0", "1"]
    assert [_result(tmp_path / job)["seed"] for job in ("0", "1")] == [0, 1]
