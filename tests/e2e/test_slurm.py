"""Sweeps through a real SLURM scheduler (``launcher=submitit_slurm``), on a one-node cluster that
``scripts/slurm.sh`` brings up on this machine for these tests and stops after them.

A compare gives the basic launcher's table; a job that fails is recorded failed; a job cancelled with
``scancel`` is reported and ``--resume`` completes it; a request the node can never satisfy is reported
and cancelled, not waited on; a pre-empted job is requeued and resumes from its mid-run checkpoint.
Skipped, with the reason, only where the cluster cannot be brought up (no root, no package manager).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from filelock import FileLock

from conftest import FAST, _env
from entrenar_bench.aggregate.collect import collect

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "slurm.sh"
COMPARE = ["compare", "--strategies", "kd,none"]
KEYS = ["group", "seed", "accuracy", "loss"]


@pytest.fixture(scope="module")
def partition() -> str:
    """The partition of a one-node SLURM cluster on this machine (``scripts/slurm.sh up``, then ``down`` unless
    it was up before the tests)."""
    if os.geteuid() != 0:
        pytest.skip("the SLURM tests start a one-node cluster, which needs root (scripts/slurm.sh up)")
    # One test session at a time on this machine's one cluster: another's `down` would stop it under us.
    with FileLock(Path(tempfile.gettempdir()) / "entrenar-bench-slurm-tests.lock"):
        was_up = shutil.which("sinfo") is not None and \
            subprocess.run(["sinfo"], capture_output=True, timeout=60).returncode == 0
        try:
            up = subprocess.run([str(SCRIPT), "up"], capture_output=True, text=True, timeout=900)
        except subprocess.TimeoutExpired:
            pytest.skip("scripts/slurm.sh up did not finish within 15 minutes")
        if up.returncode != 0:
            pytest.skip(f"no SLURM cluster here: {(up.stderr.strip().splitlines() or ['?'])[-1]}")
        yield up.stdout.strip().rsplit("=", 1)[-1]
        if not was_up:
            subprocess.run([str(SCRIPT), "down"], capture_output=True, timeout=300)


def slurm(partition: str) -> list[str]:
    return ["launcher=submitit_slurm", f"launcher.partition={partition}"]


def squeue(*options: str) -> list[list[str]]:
    out = subprocess.run(["squeue", "--noheader", "--array", "--format=%i|%T|%r", *options],
                         capture_output=True, text=True, timeout=30).stdout
    return [line.split("|") for line in out.splitlines()]


def wait_for(condition, what: str, timeout: float = 300.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def running_job(sweep: Path) -> str | None:
    """A running job of ``sweep`` (submitit names a folder after each job it submits)."""
    jobs = {folder.name for folder in sweep.glob(".submitit/*") if re.fullmatch(r"\d+(_\d+)?", folder.name)}
    return next((job for job, state, _ in squeue("--states=RUNNING") if state == "RUNNING" and job in jobs), None)


def new_sweep(root: Path, before: set[Path]) -> Path | None:
    return next(iter(set(root.glob("*")) - before), None)


def table(text: str) -> list[list[str]]:
    """The report's table without its Time and Memory columns (they are measured, so they differ)."""
    lines = text.splitlines()
    header_at = next(i for i, line in enumerate(lines) if line.startswith("Strategy") and "|" in line)
    block = lines[header_at:lines.index("", header_at)]
    rows = [[cell.strip() for cell in line.split("|")] for line in block]
    keep = [i for i, name in enumerate(rows[0]) if name not in ("Time (s)", "Memory (GB)")]
    return [[row[i] for i in keep] for row in rows if not set(row[0]) <= {"-"}]


@contextmanager
def started(bench_home: Path, module: str, *args: str) -> Iterator[subprocess.Popen]:
    """``python -m module args`` in the background, killed with its process group if the test ends first."""
    proc = subprocess.Popen([sys.executable, "-m", module, *args], env=_env(bench_home), cwd=bench_home,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def sweep_dir(stderr: str) -> Path:
    return Path(re.search(r"sweep: \d+ runs -> (\S+)", " ".join(stderr.split())).group(1))


@pytest.fixture(scope="module")
def basic(bench_home) -> tuple[str, Path]:
    """The same compare on Hydra's basic launcher: the table the SLURM sweeps must give."""
    proc = subprocess.run([sys.executable, "-m", "entrenar_bench.cli.main", *COMPARE, "--runs", "2", "--", *FAST],
                          capture_output=True, text=True, env=_env(bench_home), cwd=bench_home, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, sweep_dir(proc.stderr)


def test_compare_on_slurm_gives_the_basic_launchers_table(partition, basic, run_cli):
    proc = run_cli(*COMPARE, "--runs", "2", "--", *FAST, *slurm(partition))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert table(proc.stdout) == table(basic[0])  # same layout, same numbers: same seeds, deterministic CPU runs
    assert table(proc.stdout)[0][0] == "Strategy" and len(table(proc.stdout)) == 4  # header, kd, none, teacher


def test_failing_job_is_recorded_failed(partition, run_app, tmp_path):
    run_app("-m", "distill=none", "seed=0", "train.lr=3e-3,1e30", *FAST, *slurm(partition),
            f"hydra.sweep.dir={tmp_path}")
    records = {path.parent.name: json.loads(path.read_text()) for path in tmp_path.glob("*/result.json")}
    assert records["0"]["status"] == "completed"
    assert records["1"]["status"] == "failed" and "NonFiniteLoss" in records["1"]["error"]


def test_cancelled_job_is_reported_and_resume_completes_it(partition, basic, bench_home, run_cli):
    sweeps = bench_home / "outputs" / "compare"
    before = set(sweeps.glob("*"))
    with started(bench_home, "entrenar_bench.cli.main", *COMPARE, "--runs", "1", "--format", "json", "--", *FAST,
                 *slurm(partition)) as wrapper:
        sweep = wait_for(lambda: new_sweep(sweeps, before), "the sweep directory")
        job = wait_for(lambda: running_job(sweep), "a running job")
        subprocess.run(["scancel", job], check=True, timeout=30)
        out, err = wrapper.communicate(timeout=600)
    assert wrapper.returncode == 0, err[-3000:]  # the other run completed: reported, not an error
    assert f"{job} CANCELLED" in " ".join(err.split()) and "--resume" in err
    assert (collect(sweep).runs["status"] == "completed").sum() == 1 and json.loads(out)

    proc = run_cli("compare", "--resume", str(sweep), "--format", "json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [r["n"] for r in json.loads(proc.stdout)["results"]] == [1, 1]
    runs = collect(sweep).runs
    reference = collect(basic[1]).runs
    reference = reference[reference["seed"] == 0]
    assert sorted(runs[KEYS].to_dict("records"), key=str) == sorted(reference[KEYS].to_dict("records"), key=str)


def test_request_larger_than_the_node_is_reported_and_cancelled(partition, run_cli):
    too_many = str(len(os.sched_getaffinity(0)) + 1)  # the node has this machine's CPUs
    started = time.monotonic()
    proc = run_cli(*COMPARE, "--runs", "1", "--", *FAST, *slurm(partition), f"launcher.cpus_per_task={too_many}",
                   timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    error = proc.stderr.strip().splitlines()[-1]
    assert "never start" in error and "PartitionConfig" in error and "launcher.cpus_per_task" in error, proc.stderr
    assert time.monotonic() - started < 120
    assert not any(state == "PENDING" for _, state, _ in squeue()), "the impossible jobs were left in the queue"


def test_preempted_job_is_requeued_and_resumes_from_its_checkpoint(partition, bench_home, run_app, tmp_path):
    """Pre-emption as submitit sees it (SIGUSR2 to the running job): it is requeued and resumes from its last
    checkpoint. SLURM holds a requeued job for about two minutes; the test lets it start at once."""
    run = ["distill=none", "seed=0", "train.epochs=100", "train.checkpoint_every=5"]
    reference = run_app(*run, f"hydra.run.dir={tmp_path / 'reference'}")
    assert reference.returncode == 0, reference.stderr[-3000:]

    sweep = tmp_path / "sweep"
    with started(bench_home, "entrenar_bench.run", "-m", *run, *slurm(partition),
                 f"hydra.sweep.dir={sweep}") as multirun:
        wait_for(lambda: list(sweep.glob("0/checkpoints/*.ckpt")), "the first checkpoint", every=0.05)
        job = running_job(sweep)
        subprocess.run(["scancel", "--signal=USR2", job], check=True, timeout=30)
        wait_for(lambda: any(j == job and state == "PENDING" for j, state, _ in squeue()), "the requeue", timeout=60)
        subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], check=True, timeout=30)
        _, err = multirun.communicate(timeout=600)
    assert multirun.returncode == 0, err[-3000:]

    resumed = json.loads((sweep / "0" / "result.json").read_text())
    uninterrupted = json.loads((tmp_path / "reference" / "result.json").read_text())
    assert resumed["status"] == "completed" and resumed["resumed_from_epoch"] >= 5
    assert resumed["metrics"] == uninterrupted["metrics"]
