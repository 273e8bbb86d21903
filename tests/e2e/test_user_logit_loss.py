"""A logit loss defined in this file alone — the symmetric KL ``KL(p ‖ q) + KL(q ‖ p)`` — chosen by config
(``distill.logit_loss=<this module>.symmetric_kl``) in a real run of the Hydra app; nothing under entrenar_bench/
knows its name. A path that is no logit term stops the app before launch with one line and exit 2."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import LM_FAST
from entrenar_bench.distill import losses

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parents[1] / "entrenar_bench"
TERM = "symmetric_kl"


def symmetric_kl(student_logits, teacher_logits, mask, temperature=1.0):
    """Jeffreys' divergence ``KL(p ‖ q) + KL(q ‖ p)``, p the teacher's and q the student's softmax at T (no T²)."""
    return (losses.forward_kl(student_logits, teacher_logits, mask, temperature=temperature, scale_t2=False)
            + losses.reverse_kl(student_logits, teacher_logits, mask, temperature=temperature, scale_t2=False))


def _app(bench_home: Path, run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ENTRENAR_BENCH_HOME": str(bench_home), "PYTHONWARNINGS": "ignore",
           "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "entrenar_bench.run", *LM_FAST, "train.epochs=1", "seed=0",
                           f"hydra.run.dir={run_dir}", *overrides],
                          capture_output=True, text=True, env=env, cwd=bench_home, timeout=600)


def _train_loss(run_dir: Path) -> float:
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    return float(next(r["train/loss"] for r in rows if r["train/loss"]))


def test_no_file_of_the_package_knows_the_users_term():
    assert not [p for p in PACKAGE.rglob("*") if p.is_file() and p.suffix in (".py", ".yaml")
                and TERM in p.read_text(errors="ignore")]


def test_a_logit_loss_of_this_file_is_used_through_config(bench_home, tmp_path):
    path = f"{Path(__file__).stem}.{TERM}"
    runs = {}
    for name in ("kl", path):
        proc = _app(bench_home, tmp_path / name, f"distill.logit_loss={name}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = json.loads((tmp_path / name / "result.json").read_text())
    mine, kl = runs[path], runs["kl"]
    assert mine["status"] == "completed" and mine["distill"]["logit_loss"] == path  # the record names the term
    assert mine["config_hash"] != kl["config_hash"]
    # The same seed, data and weights (α 0.5, T 1): the logged training loss adds α·KL(q ‖ p) to kl's.
    assert _train_loss(tmp_path / path) > _train_loss(tmp_path / "kl") > 0


def test_a_path_that_is_no_logit_term_stops_the_app_before_launch(bench_home, tmp_path):
    proc = _app(bench_home, tmp_path / "bad", f"distill.logit_loss={Path(__file__).stem}.no_such_term")
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "logit_loss" in line]
    assert len(errors) == 1 and "cannot import" in errors[0], proc.stderr[-2000:]
    assert not (tmp_path / "bad" / "result.json").exists()
