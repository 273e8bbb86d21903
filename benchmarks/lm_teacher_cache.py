"""Teacher-output cache: the same ``entrenar-bench temperature`` sweep on ``+experiment=lm`` reading the
teacher's stored outputs (``distill.teacher_outputs=cached``, exact) against running the teacher at every
step (``online``). Targets: at least 1.5x faster, and identical accuracies at every temperature.

Each side is timed end to end as a whole command, alternating; the teacher is trained and its outputs
stored once beforehand, untimed (a sweep that has to compute them pays about a second once).

    python benchmarks/lm_teacher_cache.py                       # T = 1..4, 2 runs each, 3 repeats
    python benchmarks/lm_teacher_cache.py --repeats 1 -- train.epochs=10   # quick try
"""

from __future__ import annotations

import argparse
import json
import sys

from common import bench_home, cli, home_argument, machine, median, parse_with_overrides, ratio_line, run, warm_teacher

TARGET = 1.5


def sweep(args: argparse.Namespace, overrides: list[str], mode: str) -> list[str]:
    return cli("temperature", "--start", str(args.start), "--end", str(args.end), "--step", str(args.step),
               "--runs", str(args.runs), "--format", "json", "--", "+experiment=lm",
               f"distill.teacher_outputs={mode}", *overrides)


def accuracies(stdout: str) -> dict[float, float]:
    return {r["temperature"]: r["accuracy"] for r in json.loads(stdout)["results"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=float, default=1.0)
    parser.add_argument("--end", type=float, default=4.0)
    parser.add_argument("--step", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="alternate the two sides this many times (median)")
    home_argument(parser)
    args, overrides = parse_with_overrides(parser)
    home = bench_home(args.home)
    warm_teacher(home, ["+experiment=lm", *overrides])  # trains the teacher and stores its outputs
    print(f"machine: {machine()}")
    print(f"sweep: temperature --start {args.start} --end {args.end} --step {args.step} --runs {args.runs} "
          f"-- +experiment=lm {' '.join(overrides)}".rstrip())
    speedups = []
    for repeat in range(args.repeats):
        t_cached, proc = run(sweep(args, overrides, "cached"), home)
        cached = accuracies(proc.stdout)
        t_online, proc = run(sweep(args, overrides, "online"), home)
        online = accuracies(proc.stdout)
        if cached != online:
            sys.exit(f"the cached and the online teacher disagree: {cached} vs {online}")
        speedups.append(t_online / t_cached)
        shown = ", ".join(f"T={t:g}: {a:.4f}" for t, a in sorted(cached.items()))
        print(f"[{repeat + 1}] online {t_online:.1f} s | cached {t_cached:.1f} s | speed-up {t_online / t_cached:.2f}x "
              f"| accuracies identical ({shown})", flush=True)
    print(ratio_line("teacher-output cache (online / cached, median)", median(speedups), f">= {TARGET}x",
                     median(speedups) >= TARGET))


if __name__ == "__main__":
    main()
