"""What the tests of a user's own code (a logit loss, a feature term defined in a test file) share: running the
Hydra app with the test's directory importable, reading a run's first training loss, and finding a name in the
package."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

from conftest import LM_FAST

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parents[1] / "entrenar_bench"


def run_app(bench_home: Path, run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    """One epoch of the tiny LM run (seed 0) in ``run_dir``, this directory on the import path."""
    env = {**os.environ, "ENTRENAR_BENCH_HOME": str(bench_home), "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "entrenar_bench.run", *LM_FAST, "train.epochs=1", "seed=0",
                           f"hydra.run.dir={run_dir}", *overrides],
                          capture_output=True, text=True, env=env, cwd=bench_home, timeout=600)


def first_train_loss(run_dir: Path) -> float:
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    return float(next(r["train/loss"] for r in rows if r["train/loss"]))


def package_files_naming(name: str) -> list[Path]:
    """The package's Python and YAML files that contain ``name``."""
    return [p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix in (".py", ".yaml")
            and name in p.read_text(errors="ignore")]
