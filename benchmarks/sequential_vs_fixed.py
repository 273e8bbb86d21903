"""Compute saved by ``--runs auto`` on a real sweep: its verdicts, runs and training time beside the fixed design's.

The fixed design (every group ``--max-runs`` runs, one Welch test a comparison, Holm: the procedure with one
look) is the ordinary sweep of the same command with ``--runs N``. Its jobs for seeds 0 … n − 1 of a group are
the auto sweep's runs of that group, whose results are determined by their configuration (seed included), so
they are copied, not trained again: run/app.py skips a job whose completed record has the job's config hash
and refuses one of another configuration, so a wrong copy cannot pass unnoticed.

  python benchmarks/sequential_vs_fixed.py AUTO_DIR     # 1. writes AUTO_DIR-fixed: the plan and the copied runs
  entrenar-bench compare --resume AUTO_DIR-fixed        # 2. trains only the (group, seed) pairs auto did not
  python benchmarks/sequential_vs_fixed.py AUTO_DIR     # 3. the table (Markdown, for BENCHMARKS.md)
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
from pathlib import Path

from entrenar_bench.aggregate.collect import collect
from entrenar_bench.aggregate.sequential import EFFICACY, run_procedure
from entrenar_bench.aggregate.sequential_design import Design
from entrenar_bench.aggregate.sequential_report import baseline_of, outcome, same_value, samples, swept_value
from entrenar_bench.run.record import RESULT_FILE, read_result
from entrenar_bench.sweep.compose import expand_jobs
from entrenar_bench.sweep.rounds import round_dirs
from entrenar_bench.sweep.sequential import RoundPlan, read_round_plan
from entrenar_bench.sweep.supervise import PLAN_FILE, record_plan


def fixed_overrides(plan: RoundPlan, runs: int) -> list[str]:
    """The ``--runs N`` sweep of the same command: seeds 0 … N − 1, every group."""
    seeds = f"seed={','.join(map(str, range(runs)))}"
    return [f"+bench={plan.task_name}", *(seeds if o.startswith("seed=") else o for o in plan.template)]


def _seed(job: list[str]) -> int:
    return int(next(o for o in job if o.startswith("seed=")).split("=", 1)[1])


def prepare(auto_dir: Path, fixed_dir: Path) -> int:
    """Write the fixed sweep's plan and copy each completed auto run to its job folder; the number copied."""
    plan = read_round_plan(auto_dir)
    overrides = fixed_overrides(plan, Design.from_dict(plan.design).max_runs)
    jobs, _ = expand_jobs(overrides)
    job_of = {(same_value(swept_value(" ".join(job), plan.key)), _seed(job)): i for i, job in enumerate(jobs)}
    fixed_dir.mkdir(parents=True, exist_ok=True)
    record_plan(fixed_dir, plan.task_name, overrides)
    copied = 0
    for folder in round_dirs(auto_dir):
        for run in sorted(p for p in folder.iterdir() if (p / RESULT_FILE).is_file()):
            record = read_result(run)
            if not record or record["status"] != "completed":
                continue
            overrides_line = " ".join(record["overrides"])
            job = job_of[(same_value(swept_value(overrides_line, plan.key)), int(record["seed"]))]
            target = fixed_dir / str(job)
            if not target.exists():
                shutil.copytree(run, target, ignore=shutil.ignore_patterns(".job.lock*"))
                copied += 1
    return copied


def verdict(status: str, diff: float | None, lower_is_better: bool) -> str:
    if status != EFFICACY:
        return "no difference shown"
    return "better" if (diff < 0) == lower_is_better else "worse"


def time_of(collection, key: str, group: str, runs: int) -> float:
    """Training seconds of a group's seeds 0 … runs − 1."""
    rows = collection.completed
    chosen = rows[[same_value(swept_value(o, key)) == same_value(group) and s < runs
                   for o, s in zip(rows["overrides"], rows["seed"])]]
    return float(chosen["time_s"].sum())


def table(auto_dir: Path, fixed_dir: Path) -> None:
    plan = read_round_plan(auto_dir)
    design = Design.from_dict(plan.design)
    baseline = baseline_of(plan.task_name, plan.values)
    auto, auto_runs = outcome(auto_dir, design, plan.key, plan.values, baseline)
    fixed_runs = collect(fixed_dir)
    lower = bool(fixed_runs.metric.lower_is_better)
    values = samples(fixed_runs, plan.key, plan.values)
    missing = [g for g, v in values.items() if sum(map(math.isfinite, v[:design.max_runs])) < design.max_runs]
    if missing:
        sys.exit(f"{fixed_dir} is not complete ({', '.join(missing)}): entrenar-bench "
                 f"{plan.task_name.replace('_', '-')} --resume {fixed_dir}")
    fixed = run_procedure(Design(design.max_runs, design.max_runs), values, baseline, lower)
    print(f"auto: {auto_dir}\nfixed: {fixed_dir}\nmetric: test {fixed_runs.metric.name}, Welch, Holm, α 0.05\n")
    print("| comparison | auto: verdict (look, runs a group) | fixed n = "
          f"{design.max_runs}: verdict (p, Holm) | same |")
    print("|---|---|---|---|")
    same = True
    for group, c in auto.comparisons.items():
        a = verdict(c.status, c.tests[-1]["mean_diff"] if c.tests else None, lower)
        f_test = fixed.comparisons[group].tests[0]
        f = verdict(fixed.comparisons[group].status, f_test["mean_diff"], lower)
        same &= a == f
        where = f"look {c.stopped_at}, {auto.runs[group]} runs" if c.stopped_at else f"{auto.runs[group]} runs"
        print(f"| {group} vs {baseline} | {a} ({where}; {c.status}) | {f} (p {f_test['p_value']:.2g}) | "
              f"{'yes' if a == f else 'NO'} |")
    used, total = sum(auto.runs.values()), design.max_runs * len(plan.values)
    auto_s = sum(time_of(auto_runs, plan.key, g, n) for g, n in auto.runs.items())
    fixed_s = sum(time_of(fixed_runs, plan.key, g, design.max_runs) for g in plan.values)
    print(f"\n| design | runs | training time (sum of the runs' time_s) |\n|---|---|---|\n"
          f"| auto | {used} ({used / total:.0%}) | {auto_s:.0f} s ({auto_s / fixed_s:.0%}) |\n"
          f"| fixed n = {design.max_runs} | {total} | {fixed_s:.0f} s |")
    print(f"\nsame verdicts: {'yes' if same else 'no'}; runs per group, auto: {auto.runs}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("auto_dir", type=Path, help="a finished --runs auto sweep")
    parser.add_argument("--fixed", type=Path, help="the fixed sweep's folder (default: AUTO_DIR-fixed)")
    args = parser.parse_args()
    fixed_dir = args.fixed or args.auto_dir.with_name(args.auto_dir.name + "-fixed")
    if not (fixed_dir / PLAN_FILE).exists():
        copied = prepare(args.auto_dir, fixed_dir)
        plan = read_round_plan(args.auto_dir)
        print(f"{fixed_dir}: {copied} runs copied from the auto sweep; train the rest with\n"
              f"  entrenar-bench {plan.task_name.replace('_', '-')} --resume {fixed_dir}")
        return 0
    table(args.auto_dir, fixed_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
