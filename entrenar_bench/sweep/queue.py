"""A sweep's jobs in SLURM's queue (``launcher=submitit_slurm``): what the progress line shows while they
wait, requests the partition can never satisfy, and jobs that left the queue without a record.

submitit names a folder after each job it submits (``<sweep dir>/.submitit/<job id>``, ``<array id>_<task>``
for arrays); ``squeue`` gives each job's state and, while it waits, SLURM's reason. A reason in
:data:`NEVER_REASONS` does not clear by waiting (the request exceeds what the partition or account allows),
so the sweep stops there: its jobs are cancelled and the error names the launcher keys to change.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

from omegaconf import DictConfig

from entrenar_bench.errors import UsageError

# squeue reasons that waiting never clears (SLURM's JOB REASON CODES): the request exceeds the partition,
# or an account, QOS or dependency that can never be met. Resources, Priority, BeginTime, ... do clear.
NEVER_REASONS = {
    "PartitionConfig": "the request exceeds what the partition's nodes have",
    "PartitionTimeLimit": "the time limit exceeds the partition's",
    "BadConstraints": "no node satisfies the request",
    "InvalidAccount": "the account is not valid",
    "InvalidQOS": "the QOS is not valid",
    "DependencyNeverSatisfied": "a dependency can never be satisfied",
}
PER_JOB_LIMIT = re.compile(r"^(QOS|Assoc)Max\w*Per(Job|Node)\w*$")  # e.g. QOSMaxCpuPerJobLimit
ACTIVE = {"PENDING", "RUNNING", "COMPLETING", "CONFIGURING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD",
          "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED"}
JOB_FOLDER = re.compile(r"^(\d+)(?:_(\d+))?$")


def _run(*command: str) -> str:
    """A SLURM command's output; empty when it is missing, fails to start or hangs (the queue is then unknown)."""
    if shutil.which(command[0]) is None:
        return ""
    try:
        return subprocess.run(list(command), capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


def never_clears(reason: str) -> bool:
    return reason in NEVER_REASONS or bool(PER_JOB_LIMIT.match(reason))


class SlurmQueue:
    """Polls ``squeue`` (at most every ``poll_s`` seconds) for the jobs submitit submitted for one sweep."""

    def __init__(self, sweep_dir: Path, launcher: DictConfig, poll_s: float = 2.0, settle_s: float = 10.0):
        self.folder = Path(sweep_dir) / ".submitit"
        self.log = Path(sweep_dir) / "sweep.log"  # the multirun's output; this launch's part starts at _log_start
        self._log_start = self.log.stat().st_size if self.log.exists() else 0
        self.launcher = launcher
        self.poll_s = poll_s
        self.settle_s = settle_s  # how long the multirun may take to see that every job has left the queue
        self.states: dict[str, tuple[str, str]] = {}  # job id -> (state, reason)
        self._polled = float("-inf")
        self._idle_since: float | None = None
        self._earlier: set[str] = set()
        self._earlier = set(self.job_ids())  # submitted by an earlier launch of this sweep (before a resume)

    def job_ids(self) -> list[str]:
        """The jobs submitit submitted for this launch of the sweep (array tasks, not the array itself)."""
        try:
            names = [m for m in map(JOB_FOLDER.match, (p.name for p in self.folder.iterdir())) if m]
        except OSError:
            return []
        arrays = {m.group(1) for m in names if m.group(2) is not None}
        jobs = {m.group(0) for m in names if m.group(2) is not None or m.group(1) not in arrays}
        return sorted(jobs - self._earlier, key=lambda job: tuple(map(int, job.split("_"))))

    def poll(self) -> dict[str, tuple[str, str]]:
        """``job -> (state, reason)`` from squeue (finished jobs too, while SLURM still lists them)."""
        if time.monotonic() - self._polled < self.poll_s:
            return self.states
        self._polled = time.monotonic()
        jobs = self.job_ids()
        if not jobs:
            return self.states
        ids = sorted({job.split("_")[0] for job in jobs})
        out = _run("squeue", "--noheader", "--array", "--states=all", "--format=%i|%T|%r", f"--jobs={','.join(ids)}")
        for line in out.splitlines():
            job, state, reason = (line.split("|") + ["", ""])[:3]
            self.states[job.strip()] = (state.strip(), reason.strip())
        return self.states

    def summary(self) -> str:
        """The progress line's part: e.g. ``2 running, 3 queued (Resources)``."""
        counts = Counter(state for state, _ in self.states.values() if state in ACTIVE)
        reasons = Counter(reason for state, reason in self.states.values() if state == "PENDING" and reason != "None")
        parts = [f"{counts['RUNNING']} running"] if counts["RUNNING"] else []
        if counts["PENDING"]:
            why = ", ".join(reason for reason, _ in reasons.most_common(2))
            parts.append(f"{counts['PENDING']} queued" + (f" ({why})" if why else ""))
        return ", ".join(parts)

    def check(self) -> None:
        """UsageError (after cancelling the sweep's jobs) if SLURM says some can never start."""
        stuck = Counter(reason for state, reason in self.states.values() if state == "PENDING" and never_clears(reason))
        if not stuck:
            return
        reason, count = stuck.most_common(1)[0]
        self.cancel()
        raise UsageError(f"SLURM can never start {count} of this sweep's jobs (squeue: {reason}: "
                         f"{NEVER_REASONS.get(reason, 'a per-job limit of the QOS or account')}); "
                         f"{self._request()}; they were cancelled")

    def _request(self) -> str:
        """What was asked, what the partition's nodes have, and the launcher keys that set it."""
        launcher = self.launcher
        asked = (f"each asked for {launcher.get('cpus_per_task')} CPUs, {launcher.get('mem_gb')} GB, "
                 f"{launcher.get('gpus_per_node') or 0} GPUs, {launcher.get('timeout_min')} min")
        partition = launcher.get("partition")
        nodes = ""
        info = _run("sinfo", "--noheader", f"--partition={partition}", "--format=%c|%m").split() if partition else []
        if info and all(re.fullmatch(r"\d+\|\d+", line) for line in info):
            cpus, mem = zip(*(line.split("|") for line in info))
            nodes = f" (its nodes: up to {max(map(int, cpus))} CPUs, {max(map(int, mem)) // 1024} GB)"
        where = f"partition {partition}{nodes}" if partition else "the default partition"
        return (f"{asked} on {where}: change launcher.cpus_per_task, launcher.mem_gb, launcher.gpus_per_node, "
                f"launcher.timeout_min or launcher.partition")

    def check_submission(self) -> None:
        """UsageError if ``sbatch`` refused the sweep's jobs (its first error in this launch's log)."""
        try:
            with open(self.log, "rb") as f:
                f.seek(self._log_start)
                text = f.read(1 << 20).decode("utf-8", "replace")
        except OSError:
            return
        refused = re.findall(r"^sbatch: error: (.+)$", text, flags=re.MULTILINE)
        if refused:
            raise UsageError(f"SLURM refused the sweep's jobs (sbatch: {refused[0]}); {self._request()}")

    def cancel(self) -> None:
        jobs = sorted({job.split("_")[0] for job in self.job_ids()})
        if jobs:
            _run("scancel", *jobs)

    def active(self) -> bool:
        return any(state in ACTIVE for state, _ in self.states.values())

    def drained(self) -> bool:
        """Every submitted job has left the queue, ``settle_s`` ago or longer: a multirun still waiting
        then waits on a job that ended without a result (cancelled, killed) and will never return."""
        if not self.states or self.active() or len(self.states) < len(self.job_ids()):
            self._idle_since = None
            return False
        self._idle_since = self._idle_since or time.monotonic()
        return time.monotonic() - self._idle_since >= self.settle_s

    def ended(self) -> dict[str, str]:
        """Jobs that ended other than COMPLETED (cancelled, failed, timed out, ...): job -> state."""
        return {job: state for job, (state, _) in self.states.items() if state not in ACTIVE and state != "COMPLETED"}


def slurm_queue(cfg: DictConfig, sweep_dir: Path) -> SlurmQueue | None:
    """The queue to watch for a sweep of ``cfg`` (None unless it runs on SLURM)."""
    launcher = cfg.get("launcher") or {}
    return SlurmQueue(sweep_dir, launcher) if launcher.get("name") == "submitit_slurm" else None
