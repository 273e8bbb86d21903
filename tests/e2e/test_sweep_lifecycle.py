"""A sweep's processes never outlive its wrapper, one process at a time runs a sweep, and one at a time
trains a job: kill -TERM / -9 of ``entrenar-bench`` leaves no process of the sweep within 10 s; a second
``--resume`` of a running sweep stops at once in one line; two plain Hydra multiruns into one directory
train each job once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import _env

LONG = ["train.epochs=400", "teacher.train.epochs=2"]  # jobs that are still training when they are stopped


def session(sid: int) -> list[int]:
    """Processes of the session ``sid`` (the Hydra child's: it and its workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:
            found.append(int(stat.parent.name))
    return found


def start_cli(bench_home: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "entrenar_bench.cli.main", *args], env=_env(bench_home),
                            cwd=bench_home, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def running_child(wrapper: subprocess.Popen, timeout: float = 180) -> tuple[int, Path]:
    """The wrapper's Hydra child and its sweep directory, once the first job has started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert wrapper.poll() is None, wrapper.stderr.read()
        for path in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = path.read_text().rsplit(")", 1)[1].split()
                cmdline = (path.parent / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if int(fields[1]) == wrapper.pid and b"entrenar_bench.run" in cmdline:
                sweep = Path(next(a for a in cmdline if a.startswith(b"hydra.sweep.dir=")).decode().split("=", 1)[1])
                if list(sweep.glob("*/.hydra/overrides.yaml")):
                    return int(path.parent.name), sweep
        time.sleep(0.2)
    raise AssertionError("the sweep never started a job")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_no_process_of_the_sweep_outlives_a_killed_wrapper(bench_home, signum):
    wrapper = start_cli(bench_home, "compare", "--strategies", "kd,none", "--runs", "2", "--",
                        "launcher=joblib", "launcher.n_jobs=2", *LONG)
    child, sweep = running_child(wrapper)
    time.sleep(2)  # the joblib workers are training
    assert len(session(child)) >= 3  # the child and its workers
    os.kill(wrapper.pid, signum)
    deadline = time.monotonic() + 10
    while (session(child) or wrapper.poll() is None) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert session(child) == [] and wrapper.poll() is not None, "a process of the sweep outlived its wrapper"
    assert wrapper.returncode == (128 + signum if signum == signal.SIGTERM else -signum)
    if signum == signal.SIGTERM:
        err = wrapper.stderr.read().strip().splitlines()[-1]
        assert "interrupted by SIGTERM" in err and f"--resume {sweep}" in err
    assert not any("completed" in p.read_text() for p in sweep.glob("*/result.json"))


def test_a_second_resume_of_a_running_sweep_stops_at_once(bench_home):
    first = start_cli(bench_home, "compare", "--strategies", "kd,none", "--runs", "1", "--", *LONG)
    child, sweep = running_child(first)
    os.kill(first.pid, signal.SIGTERM)
    first.wait(30)
    resumed = start_cli(bench_home, "compare", "--resume", str(sweep))
    child, _ = running_child(resumed)
    try:
        start = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "entrenar_bench.cli.main", "compare", "--resume", str(sweep)],
                                env=_env(bench_home), cwd=bench_home, capture_output=True, text=True, timeout=60)
        assert time.monotonic() - start < 15
        assert second.returncode != 0 and second.stdout == ""
        err = second.stderr.strip().splitlines()
        assert len(err) == 1 and f"is being run by pid {resumed.pid}" in err[0], second.stderr
        children = [pid for pid in session(child)
                    if b"entrenar_bench.run" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert children == [child]  # one Hydra child trains this sweep's jobs
    finally:
        os.kill(resumed.pid, signal.SIGTERM)
        resumed.wait(30)
    assert session(child) == []


def test_two_plain_multiruns_into_one_directory_train_each_job_once(bench_home, tmp_path):
    sweep = tmp_path / "sweep"
    command = [sys.executable, "-m", "entrenar_bench.run", "-m", "+bench=compare", "seed=0", "distill=kd,none",
               "train.epochs=30", "teacher.train.epochs=2", f"hydra.sweep.dir={sweep}"]
    first = subprocess.Popen(command, env=_env(bench_home), cwd=bench_home, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    while not list(sweep.glob("0/.hydra")) and first.poll() is None:
        time.sleep(0.1)
    second = subprocess.run(command, env=_env(bench_home), cwd=bench_home, capture_output=True, text=True,
                            timeout=600)
    first.wait(600)
    assert first.returncode == 0 and second.returncode == 0, second.stderr[-2000:]
    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/result.json"))]
    assert [r["status"] for r in records] == ["completed", "completed"]
    logs = "".join(p.read_text() for p in sweep.glob("*/run.log"))
    assert logs.count("already completed") == 2  # each job trained by one multirun, found done by the other
    assert logs.count("accuracy=") == 2
