"""``launcher=ray launcher.address=HOST:PORT`` joins a Ray cluster started apart with ``ray start --head``
(not the in-process local cluster of test_launchers.py) and gives the basic launcher's numbers. The head
is started without ENTRENAR_BENCH_HOME: the workers are given the launching machine's."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import FAST, _env, read_results
from entrenar_bench.aggregate.collect import collect

KEYS = ["group", "seed", "accuracy", "loss"]
SWEEP = ["-m", "distill=none,kd", "seed=0", *FAST]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """``ray start --head --block`` in a session of its own, with a token of its own; stopped after the tests
    by signalling that session (``ray stop`` would stop every Ray on the machine, other users' too)."""
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    ray = Path(sys.executable).with_name("ray")
    if not ray.exists():
        pytest.skip("no `ray` command beside this Python")
    port = _free_port()
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = {k: v for k, v in os.environ.items() if k != "ENTRENAR_BENCH_HOME"} | auth
    log = tmp_path_factory.mktemp("ray") / "head.log"
    with open(log, "w") as out:
        head = subprocess.Popen([str(ray), "start", "--head", f"--port={port}", "--num-cpus=2",
                                 "--include-dashboard=false", "--disable-usage-stats", "--block"],
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 120
    while "will now block" not in log.read_text():
        assert head.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.2)
    yield f"127.0.0.1:{port}", auth
    os.killpg(head.pid, signal.SIGTERM)
    try:
        head.wait(5)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(head.pid, signal.SIGKILL)  # Ray drains for 30 s on SIGTERM; nothing here needs draining
    except ProcessLookupError:
        pass
    head.wait()
    current = Path("/tmp/ray/ray_current_cluster")  # where `ray start` notes its cluster; a killed head leaves it
    if current.exists() and current.read_text().strip().endswith(f":{port}"):
        current.unlink()


def test_sweep_on_an_existing_ray_cluster_matches_basic(ray_head, bench_home, tmp_path):
    address, auth = ray_head
    env = _env(bench_home)
    basic = subprocess.run([sys.executable, "-m", "entrenar_bench.run", *SWEEP,
                            f"hydra.sweep.dir={tmp_path / 'basic'}"],
                           capture_output=True, text=True, env=env, cwd=bench_home, timeout=600)
    assert basic.returncode == 0, basic.stderr[-3000:]
    proc = subprocess.run([sys.executable, "-m", "entrenar_bench.run", *SWEEP, "launcher=ray",
                           f"launcher.address={address}", f"hydra.sweep.dir={tmp_path / 'ray'}"],
                          capture_output=True, text=True, env=env | auth, cwd=bench_home, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Connected to Ray cluster" in proc.stderr or "existing Ray cluster" in proc.stderr
    got, want = collect(tmp_path / "ray").runs, collect(tmp_path / "basic").runs
    assert (got["status"] == "completed").all() and len(got) == 2
    assert sorted(got[KEYS].to_dict("records"), key=str) == sorted(want[KEYS].to_dict("records"), key=str)
    # kd's teacher came from this session's cache: the workers saw this ENTRENAR_BENCH_HOME, not their own.
    teachers = [r["teacher"]["cache"] for r in read_results(tmp_path / "ray") if r.get("teacher")]
    assert teachers and all(t.startswith(str(bench_home)) for t in teachers)
