"""Aggregation scale: ``collect()`` and the whole ``entrenar-bench aggregate DIR`` command on
1,000 and 10,000 synthetic run directories. Target: under 10 s for 10,000, growth close to linear.

The run directories are made from the record of one real (short) run: the same files and
fields, with the temperature, seed and metrics varied. A temperature sweep of 20 points x
(size / 20) seeds, with Hydra's ``multirun.yaml`` and each job's ``.hydra/overrides.yaml``:
the number of groups stays fixed, so the growth measured is the growth in run directories
(pairwise statistics grow with the square of the number of groups, whatever the runs).
Files are freshly written, so they are in the page cache (a warm read, as right after a sweep).
Timed: ``collect()`` (run directories -> table), the ``temperature`` report built from it
(what ``entrenar-bench temperature`` prints), and ``entrenar-bench aggregate DIR`` end to end.

    python benchmarks/aggregation.py                 # 1,000 and 10,000
    python benchmarks/aggregation.py --sizes 200 2000
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
from pathlib import Path

import yaml

from common import bench_home, cli, home_argument, machine, ratio_line, run

TARGET_S = 10.0
POINTS = 20


def template(home: Path) -> dict:
    """The record of one real, short run."""
    run_dir = home / "outputs" / "template"
    run([sys.executable, "-m", "entrenar_bench.run", "train.epochs=1", "teacher.train.epochs=1",
         f"hydra.run.dir={run_dir}"], home)
    return json.loads((run_dir / "result.json").read_text())


def synthetic_sweep(sweep_dir: Path, size: int, record: dict) -> None:
    seeds = max(2, size // POINTS)
    temperatures = [f"{1 + 0.5 * i:.1f}" for i in range(POINTS)]
    rng = random.Random(size)
    sweep_dir.mkdir(parents=True)
    task = ["+bench=temperature", f"distill.temperature={','.join(temperatures)}",
            f"seed={','.join(map(str, range(seeds)))}"]
    (sweep_dir / "multirun.yaml").write_text(yaml.safe_dump(
        {"task_name": "temperature", "hydra": {"sweeper": {"params": None}, "overrides": {"task": task, "hydra": []}}}))
    job = 0
    for t in temperatures:
        for seed in range(seeds):
            overrides = ["+bench=temperature", f"distill.temperature={t}", f"seed={seed}"]
            r = copy.deepcopy(record)
            r.update(seed=seed, overrides=overrides, time_s=rng.uniform(2, 3))
            r["config"]["seed"] = seed
            r["config"]["distill"]["temperature"] = r["distill"]["temperature"] = float(t)
            r["metrics"] = {k: min(1.0, max(0.0, rng.gauss(0.95 - 0.005 * abs(float(t) - 4), 0.01)))
                            if "accuracy" in k else rng.uniform(0.05, 0.2) for k in r["metrics"]}
            job_dir = sweep_dir / str(job)
            (job_dir / ".hydra").mkdir(parents=True)
            (job_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
            (job_dir / "result.json").write_text(json.dumps(r, indent=2, sort_keys=True))
            job += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    home_argument(parser)
    args = parser.parse_args()
    home = bench_home(args.home)
    record = template(home)
    from entrenar_bench.aggregate.bench_reports import param_sweep_report
    from entrenar_bench.sweep.commands import sweep_command
    from entrenar_bench.aggregate.collect import collect

    print(f"machine: {machine()}")
    timings = {}
    for size in args.sizes:
        sweep_dir = home / "outputs" / "synthetic" / f"{size}-{time.time_ns()}"
        synthetic_sweep(sweep_dir, size, record)
        start = time.perf_counter()
        collection = collect(sweep_dir)
        t_collect = time.perf_counter() - start
        assert len(collection.completed) == size and collection.runs["group"].nunique() == POINTS
        start = time.perf_counter()
        param_sweep_report(collection, sweep_command("temperature"))
        t_report = time.perf_counter() - start
        t_command, _ = run(cli("aggregate", str(sweep_dir), "--format", "json"), home)
        timings[size] = (t_collect, t_command)
        print(f"{size:>6} runs: collect() {t_collect:.2f} s | + temperature report {t_report:.2f} s "
              f"| `entrenar-bench aggregate` end to end {t_command:.2f} s")
    small, large = min(timings), max(timings)
    if small != large:
        growth = timings[large][0] / timings[small][0]
        print(f"growth of collect() from {small} to {large} runs: {growth:.1f}x for {large / small:.0f}x the runs "
              f"(linear = {large / small:.0f}x)")
        growth = timings[large][1] / timings[small][1]
        print(f"growth of the command: {growth:.1f}x (includes ~constant start-up)")
    print(ratio_line(f"aggregate {large} runs (s, end to end)", timings[large][1], f"< {TARGET_S:.0f} s",
                     timings[large][1] < TARGET_S).replace("x (", " s (", 1))


if __name__ == "__main__":
    main()
