"""Shared by the benchmarks: a throwaway ENTRENAR_BENCH_HOME with a warm teacher, timed commands."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from entrenar_bench.training.loop import cpu_model

ROOT = Path(__file__).resolve().parent.parent


def machine() -> str:
    """CPU model, usable cores and the load average: timings are only comparable on one machine."""
    cpu = cpu_model()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{cpu}; {len(os.sched_getaffinity(0))} usable cores; load average {load}; "
            f"Python {platform.python_version()}")


def compare_parser(description: str) -> argparse.ArgumentParser:
    """Options shared by the compare benchmarks: strategies, runs, repeats, home."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--strategies", default="kd,progressive,attention,mse,combined")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternate the two sides this many times and report the median (default: 3: "
                             "timings on a shared machine vary by about 10%% from minute to minute)")
    home_argument(parser)
    return parser


def home_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", type=Path, default=None,
                        help="ENTRENAR_BENCH_HOME to use (default: a new temporary directory)")


def parse_with_overrides(parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, list[str]]:
    """Own options, then Hydra overrides after a lone ``--``."""
    argv = sys.argv[1:]
    own, overrides = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    return parser.parse_args(own), overrides


def bench_home(path: Path | None) -> Path:
    home = Path(path or tempfile.mkdtemp(prefix="entrenar-bench-")).resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["ENTRENAR_BENCH_HOME"] = str(home)
    return home


def run(command: list[str], home: Path, check: bool = True) -> tuple[float, subprocess.CompletedProcess]:
    """Run ``command`` in ``home``; return its wall time in seconds (start-up and imports included)."""
    env = {**os.environ, "ENTRENAR_BENCH_HOME": str(home), "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=home, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if check and proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(command)}\n{proc.stderr[-3000:]}")
    return wall, proc


def warm_teacher(home: Path, overrides: list[str]) -> None:
    """Train (or find) the cached teacher once, untimed: both sides of a comparison then load it."""
    run([sys.executable, "-m", "entrenar_bench.run", "distill=kd", "train.epochs=1", *overrides,
         f"hydra.run.dir={home}/outputs/warmup"], home)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "entrenar_bench.cli.main", *args]


def compare_args(strategies: str, runs: int, overrides: list[str]) -> list[str]:
    return ["compare", "--strategies", strategies, "--runs", str(runs), "--format", "json", "--", *overrides]


def accuracies(document_text: str) -> dict[str, float]:
    """Mean accuracy per strategy from ``compare --format json``."""
    document = json.loads(document_text)
    return {r["strategy"]: r["accuracy"] for r in document["results"]}


def ratio_line(name: str, value: float, target: str, met: bool) -> str:
    return f"{name}: {value:.2f}x (target {target}) -> {'MET' if met else 'MISSED'}"


def median(values: list[float]) -> float:
    return statistics.median(values)
