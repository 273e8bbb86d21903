"""A logit loss defined in this file alone — the symmetric KL ``KL(p ‖ q) + KL(q ‖ p)`` — chosen by config
(``distill.logit_loss=<this module>.symmetric_kl``) in a real run of the Hydra app; nothing under entrenar_bench/
knows its name. A path that is no logit term stops the app before launch with one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

from entrenar_bench.distill import losses
from user_code import first_train_loss, package_files_naming, run_app

TERM = "symmetric_kl"


def symmetric_kl(student_logits, teacher_logits, mask, temperature=1.0):
    """Jeffreys' divergence ``KL(p ‖ q) + KL(q ‖ p)``, p the teacher's and q the student's softmax at T (no T²)."""
    return (losses.forward_kl(student_logits, teacher_logits, mask, temperature=temperature, scale_t2=False)
            + losses.reverse_kl(student_logits, teacher_logits, mask, temperature=temperature, scale_t2=False))


def test_no_file_of_the_package_knows_the_users_term():
    assert not package_files_naming(TERM)


def test_a_logit_loss_of_this_file_is_used_through_config(bench_home, tmp_path):
    path = f"{Path(__file__).stem}.{TERM}"
    runs = {}
    for name in ("kl", path):
        proc = run_app(bench_home, tmp_path / name, f"distill.logit_loss={name}")
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = json.loads((tmp_path / name / "result.json").read_text())
    mine, kl = runs[path], runs["kl"]
    assert mine["status"] == "completed" and mine["distill"]["logit_loss"] == path  # the record names the term
    assert mine["config_hash"] != kl["config_hash"]
    # The same seed, data and weights (α 0.5, T 1): the logged training loss adds α·KL(q ‖ p) to kl's.
    assert first_train_loss(tmp_path / path) > first_train_loss(tmp_path / "kl") > 0


def test_a_path_that_is_no_logit_term_stops_the_app_before_launch(bench_home, tmp_path):
    proc = run_app(bench_home, tmp_path / "bad", f"distill.logit_loss={Path(__file__).stem}.no_such_term")
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "logit_loss" in line]
    assert len(errors) == 1 and "cannot import" in errors[0], proc.stderr[-2000:]
    assert not (tmp_path / "bad" / "result.json").exists()
