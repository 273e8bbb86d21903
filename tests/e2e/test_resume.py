"""Kill a sweep part-way, resume it: nothing finished is recomputed, every run is reported,
and the aggregate equals an uninterrupted sweep's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import FAST, _env
from entrenar_bench.aggregate.collect import collect

SWEEP = ["-m", "+bench=compare", "distill=none,kd", "seed=0,1,2", *FAST]
KEYS = ["group", "seed", "accuracy", "loss"]


def _completed(sweep_dir) -> dict[str, tuple[str, int]]:
    """job -> (started_at, result.json mtime) of every completed job."""
    out = {}
    for path in sweep_dir.glob("*/result.json"):
        record = json.loads(path.read_text())  # never a partial file: this would raise
        if record["status"] == "completed":
            out[path.parent.name] = (record["started_at"], path.stat().st_mtime_ns)
    return out


def _kill_after(bench_home, sweep_dir, completed: int) -> None:
    """Start the sweep in its own process group; SIGKILL the whole group once ``completed`` jobs are done."""
    child = subprocess.Popen([sys.executable, "-m", "entrenar_bench.run", *SWEEP, f"hydra.sweep.dir={sweep_dir}"],
                             env=_env(bench_home), cwd=bench_home, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while len(_completed(sweep_dir)) < completed and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def _table(sweep_dir):
    runs = collect(sweep_dir).runs
    return runs[KEYS].sort_values(["group", "seed"]).reset_index(drop=True).to_dict("records")


@pytest.mark.slow
def test_kill_then_resume(bench_home, run_app, run_cli, tmp_path):
    reference = tmp_path / "uninterrupted"
    assert run_app(*SWEEP, f"hydra.sweep.dir={reference}").returncode == 0

    sweep_dir = tmp_path / "killed"
    _kill_after(bench_home, sweep_dir, completed=2)
    before = _completed(sweep_dir)
    assert 2 <= len(before) < 6, "the sweep must be cut off part-way"
    partial = collect(sweep_dir)
    assert not partial.problems and (partial.runs["status"] != "completed").sum() == 6 - len(before)

    proc = run_cli("compare", "--resume", str(sweep_dir), "--format", "json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    document = json.loads(proc.stdout)
    after = _completed(sweep_dir)
    assert len(after) == 6
    assert {job: after[job] for job in before} == before, "a completed job was recomputed"
    assert _table(sweep_dir) == _table(reference)
    assert "none" in proc.stdout and "kd" in proc.stdout and document

    # Plain Hydra: the same multirun into the same directory again recomputes nothing.
    assert run_app(*SWEEP, f"hydra.sweep.dir={sweep_dir}").returncode == 0
    assert _completed(sweep_dir) == after


def test_resume_rejects_bad_directories(run_cli, tmp_path):
    proc = run_cli("compare", "--resume", str(tmp_path / "nope"))
    assert proc.returncode == 2 and "no such directory" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = run_cli("compare", "--resume", str(tmp_path))
    assert proc.returncode == 2 and "no multirun.yaml" in proc.stderr
    (tmp_path / "multirun.yaml").write_text("task_name: temperature\nhydra: {overrides: {task: [], hydra: []}}\n")
    proc = run_cli("compare", "--resume", str(tmp_path))
    assert proc.returncode == 2 and "'temperature' sweep" in proc.stderr
