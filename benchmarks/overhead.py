"""Overhead: end-to-end ``entrenar-bench compare`` (basic launcher) against a plain PyTorch loop
doing the same trainings in one process (``plain_loop.py``). Target: at most 1.1x (issue 32).

Both sides are timed as whole processes (interpreter start, imports, data, training,
evaluation; the CLI also composes and checks configs, writes run records and aggregates).
The teacher is trained once beforehand, untimed, and both sides load it from the cache.

    python benchmarks/overhead.py                       # 5 strategies x 3 seeds, 100 epochs
    python benchmarks/overhead.py --strategies none,kd --runs 1 -- train.epochs=20   # quick try
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

from common import (ROOT, accuracies, bench_home, cli, compare_args, compare_parser, machine, median,
                    parse_with_overrides, ratio_line, run, warm_teacher)

TARGET = 1.1


def plan(strategies: list[str], runs: int, overrides: list[str]) -> dict:
    """Each job of the sweep as plain values, from the same composed configs the sweep runs."""
    from entrenar_bench.sweep.compose import compose_config
    from entrenar_bench.run.model_cache import model_key
    from entrenar_bench.run.app import distill_settings

    jobs = []
    for strategy in strategies:
        for seed in range(runs):
            cfg = compose_config([f"distill={strategy}", f"seed={seed}", *overrides])
            if cfg.data._target_ != "entrenar_bench.data.arrays.DigitsDataModule" or cfg.train.augment_shift:
                sys.exit("the plain loop reproduces the digits data without augmentation only")
            jobs.append({
                "distill": dataclasses.asdict(distill_settings(cfg)), "seed": seed, "epochs": cfg.train.epochs,
                "lr": cfg.train.lr, "weight_decay": cfg.train.weight_decay, "batch_size": cfg.data.batch_size,
                "student": OmegaConf.to_container(cfg.student.model),
                "teacher": OmegaConf.to_container(cfg.teacher.model),
                "teacher_weights": str(Path(cfg.paths.cache_dir).resolve() / "teachers"
                                       / model_key(cfg.teacher, cfg.data) / "teacher.pt"),
            })
    split = {k: cfg.data[k] for k in ("val_fraction", "test_fraction", "split_seed")}
    return {"threads": cfg.threads or 1, "split": split, "jobs": jobs}


def main() -> None:
    parser = compare_parser(__doc__.splitlines()[0])
    args, overrides = parse_with_overrides(parser)
    home = bench_home(args.home)
    warm_teacher(home, overrides)
    plan_file = home / "plain_plan.json"
    plan_file.write_text(json.dumps(plan(args.strategies.split(","), args.runs, overrides)))
    print(f"machine: {machine()}")
    print(f"sweep: compare --strategies {args.strategies} --runs {args.runs} {' '.join(overrides)}".rstrip())
    ratios = []
    for repeat in range(args.repeats):
        t_cli, proc = run(cli(*compare_args(args.strategies, args.runs, overrides)), home)
        framework = accuracies(proc.stdout)
        t_plain, proc = run([sys.executable, str(ROOT / "benchmarks" / "plain_loop.py"), str(plan_file)], home)
        plain: dict[str, list[float]] = {}
        for line in proc.stdout.splitlines():
            job = json.loads(line)
            plain.setdefault(job["distill"], []).append(job["accuracy"])
        ratios.append(t_cli / t_plain)
        print(f"[{repeat + 1}] entrenar-bench compare {t_cli:.1f} s | plain PyTorch loop {t_plain:.1f} s "
              f"| ratio {t_cli / t_plain:.2f}x")
        print("    mean test accuracy (framework / plain): " + ", ".join(
            f"{s} {framework[s]:.3f}/{sum(a) / len(a):.3f}" for s, a in plain.items()))
    print(ratio_line("overhead (compare / plain loop, median)", median(ratios), f"<= {TARGET}x",
                     median(ratios) <= TARGET))


if __name__ == "__main__":
    main()
