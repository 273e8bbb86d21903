"""``--runs auto`` sweeps: rounds of ordinary multiruns, one folder each, until the procedure says stop.

``<sweep>/sequential.json`` records the plan: the task, the swept override key and its values, the overrides
every round shares, the looks (runs per group at each) and the design. Round k is the multirun

    +bench=<task> … seed=n_{k−1},…,n_k − 1 … <key>=<the groups still running> …

into ``<sweep>/round-<k>/``. After each round ``decide(sweep, k)`` (the statistics, aggregate/sequential.py,
given from above) reads the runs of seeds below n_k and returns the groups that get the next round; none: done.

A killed auto sweep resumes by replaying its rounds: a round whose jobs all completed (or that a later round was
decided on) is not launched again, the interrupted one is relaunched into its own folder, where its completed
jobs skip themselves (run/app.py), and each decision, a function of the runs below its look, comes out as
before. No run is trained twice.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from entrenar_bench.errors import Interrupted, UsageError
from entrenar_bench.files import load_yaml, read_data, write_json_atomic
from entrenar_bench.sweep.compose import expand_jobs
from entrenar_bench.sweep.launch import launch_multirun, new_sweep_dir, sweep_statuses
from entrenar_bench.sweep.rounds import ROUND, SEQUENTIAL_PLAN, is_sequential
from entrenar_bench.sweep.supervise import PLAN_FILE, hold_sweep, make_sweep_dir


@dataclass
class RoundPlan:
    """What every round of an auto sweep is made from (``sequential.json``)."""

    task_name: str
    key: str  # the swept override: distill, distill.temperature, distill.alpha, ablate
    values: list[str]
    template: list[str]  # the planned overrides, with one seed and every value (replaced per round)
    looks: list[int]
    teachers: int = 1
    design: dict[str, Any] = field(default_factory=dict)

    def overrides(self, k: int, active: Sequence[str]) -> list[str]:
        """Round ``k``'s (1-based) overrides: the new seeds of its look, the groups still running."""
        first = self.looks[k - 2] if k > 1 else 0
        seeds = f"seed={','.join(str(s) for s in range(first, self.looks[k - 1]))}"
        out = [seeds if o.startswith("seed=") else o for o in self.template]
        return [f"{self.key}={','.join(active)}" if o.startswith(f"{self.key}=") else o for o in out]

    def jobs(self, k: int, active: Sequence[str]) -> int:
        return (self.looks[k - 1] - (self.looks[k - 2] if k > 1 else 0)) * len(active) * self.teachers


def swept_values(template: Sequence[str], key: str) -> list[str]:
    """The values of ``key=a,b,c`` in a plan."""
    line = next((o for o in template if o.startswith(f"{key}=")), None)
    if line is None:
        raise ValueError(f"the plan sweeps no {key}")
    return line.split("=", 1)[1].split(",")


def read_round_plan(sweep_dir: Path | str, task_name: str | None = None) -> RoundPlan:
    """The recorded plan of an auto sweep (of ``task_name``, if given); UsageError (one line) for anything else."""
    path = Path(sweep_dir) / SEQUENTIAL_PLAN
    try:
        recorded = load_yaml(read_data(path))
        plan = RoundPlan(**recorded)
    except (OSError, ValueError, TypeError) as e:
        raise UsageError(f"--resume {sweep_dir}: unreadable {SEQUENTIAL_PLAN} ({' '.join(str(e).split())[:120]})"
                         ) from None
    if task_name is not None and plan.task_name != task_name:
        raise UsageError(f"--resume {sweep_dir}: a {plan.task_name!r} sweep, not {task_name!r}; resume it with "
                         "the command that started it")
    return plan


def _recorded_overrides(folder: Path) -> list[str] | None:
    try:
        return load_yaml(read_data(folder / PLAN_FILE)).get("overrides")
    except (OSError, ValueError, AttributeError):
        return None


def _settled(folder: Path, overrides: list[str], jobs: int) -> bool:
    """Nothing to launch for this round: every job completed, or a later round was decided on it as it is (its
    failed runs stay failed: rerunning them could change decisions already acted on). UsageError if the folder
    holds a round planned otherwise."""
    recorded = _recorded_overrides(folder)
    if recorded is not None and recorded != overrides:
        raise UsageError(f"{folder} was run as another round ({' '.join(recorded)[:120]}); the sweep's runs "
                         "changed since it was planned: start a new sweep")
    later = folder.with_name(ROUND.format(int(folder.name.split("-")[1]) + 1))
    return later.is_dir() or sum(1 for status, _ in sweep_statuses(folder).values() if status == "completed") >= jobs


def run_rounds(plan: RoundPlan, decide: Callable[[Path, int], list[str]], sweep_dir: Path | None = None,
               preload: Sequence[str] = ()) -> Path:
    """Run (or, with an existing ``sweep_dir``, resume) the rounds of ``plan``; return the sweep directory."""
    if sweep_dir is None:
        _, first = expand_jobs([f"+bench={plan.task_name}", *plan.overrides(1, plan.values)])
        sweep_dir = new_sweep_dir(first.paths.output_dir, plan.task_name)
        make_sweep_dir(sweep_dir)
    with hold_sweep(sweep_dir):
        if not is_sequential(sweep_dir):
            write_json_atomic(sweep_dir / SEQUENTIAL_PLAN, asdict(plan))
        active = list(plan.values)
        for k in range(1, len(plan.looks) + 1):
            overrides = [f"+bench={plan.task_name}", *plan.overrides(k, active)]
            folder = sweep_dir / ROUND.format(k)
            if not _settled(folder, overrides, plan.jobs(k, active)):
                try:
                    launch_multirun(plan.task_name, overrides, folder, preload)
                except Interrupted as e:  # resumed as a whole, not round by round
                    raise Interrupted(e.signum, f"interrupted by {signal.Signals(e.signum).name}: the auto sweep was "
                                      f"stopped in round {k} (resume it: entrenar-bench "
                                      f"{plan.task_name.replace('_', '-')} --resume {sweep_dir})") from None
            active = decide(sweep_dir, k)
            if not active:
                break
    return sweep_dir
