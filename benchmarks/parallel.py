"""Parallel: the same ``entrenar-bench compare`` sweep with ``launcher=joblib launcher.n_jobs=2``
against the basic (sequential) launcher. Target: at least 1.6x faster.

Each side is timed end to end as a whole command; the teacher is trained once beforehand,
untimed. With ``threads: 1`` (the default) the two workers use one core each.

    python benchmarks/parallel.py                        # 5 strategies x 3 seeds, 100 epochs
    python benchmarks/parallel.py --runs 1 -- train.epochs=20   # quick try
"""

from __future__ import annotations

import sys

from common import (accuracies, bench_home, cli, compare_args, compare_parser, machine, median,
                    parse_with_overrides, ratio_line, run, warm_teacher)

TARGET = 1.6


def main() -> None:
    parser = compare_parser(__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args, overrides = parse_with_overrides(parser)
    home = bench_home(args.home)
    warm_teacher(home, overrides)
    print(f"machine: {machine()}")
    print(f"sweep: compare --strategies {args.strategies} --runs {args.runs} {' '.join(overrides)}".rstrip())
    joblib = ["launcher=joblib", f"launcher.n_jobs={args.workers}"]
    speedups = []
    for repeat in range(args.repeats):
        t_basic, proc = run(cli(*compare_args(args.strategies, args.runs, overrides)), home)
        basic = accuracies(proc.stdout)
        t_joblib, proc = run(cli(*compare_args(args.strategies, args.runs, [*overrides, *joblib])), home)
        parallel = accuracies(proc.stdout)
        if parallel != basic:
            sys.exit(f"the two launchers disagree: {basic} vs {parallel}")
        speedups.append(t_basic / t_joblib)
        print(f"[{repeat + 1}] basic {t_basic:.1f} s | joblib x{args.workers} {t_joblib:.1f} s "
              f"| speed-up {t_basic / t_joblib:.2f}x (identical accuracies)")
    print(ratio_line(f"parallel (basic / joblib x{args.workers}, median)", median(speedups), f">= {TARGET}x",
                     median(speedups) >= TARGET))


if __name__ == "__main__":
    main()
