"""Padded vocabularies: one data vocabulary (the Markov source's 32 ids), teacher and student with embedding tables
of different sizes; distilled over the shared ids, the teacher's mass beyond them measured, recorded, refused above
distill.max_unshared_mass."""

import math

import pytest
import torch

from conftest import LM_FAST
from entrenar_bench.distill.padded_vocab import shared_logits, unshared_mass
from entrenar_bench.errors import ConfigError
from entrenar_bench.run.app import run
from models.pretrained_dirs import save_llama


def test_logits_of_different_widths_are_cut_to_the_shared_ids():
    s, t = torch.randn(2, 3, 40), torch.randn(2, 3, 36)
    a, b = shared_logits(s, t, 32)
    assert a.shape[-1] == b.shape[-1] == 32 and torch.equal(a, s[..., :32]) and torch.equal(b, t[..., :32])
    same = torch.randn(2, 3, 40)
    assert shared_logits(s, same, 32)[0] is s  # equal widths: compared over every row, as before


def test_the_unshared_mass_is_the_teachers_probability_beyond_the_shared_ids():
    logits = torch.zeros(1, 2, 4)  # uniform over 4 ids: 1/4 beyond the first 3
    assert math.isclose(unshared_mass(logits, 3), 0.25, rel_tol=1e-6)
    logits[0, 1, 3] = -math.inf
    assert math.isclose(unshared_mass(logits, 3, torch.tensor([[False, True]])), 0.0, abs_tol=1e-9)


def _padded(compose_cfg, tmp_path, teacher_rows: int, student_rows: int, *extra: str):
    save_llama(tmp_path / "teacher", layers=1, rows=teacher_rows, seed=1)
    save_llama(tmp_path / "student", layers=1, rows=student_rows, seed=2)
    return compose_cfg(*LM_FAST, "teacher=pretrained_lm", f"teacher.model.path={tmp_path / 'teacher'}",
                       "student=pretrained_lm", f"student.model.path={tmp_path / 'student'}",
                       "teacher.train.epochs=0", "train.epochs=1", *extra)


def test_a_student_with_extra_rows_distils_and_records_the_teachers_mass_outside(compose_cfg, tmp_path):
    record = run(_padded(compose_cfg, tmp_path, 32, 40), tmp_path / "run")
    assert record["status"] == "completed" and record["metrics"]["teacher_kl"] > 0
    assert record["padded_vocabulary"] == {"teacher_rows": 32, "student_rows": 40, "shared_ids": 32,
                                           "unshared_mass": 0.0}


def test_a_teacher_with_mass_beyond_the_shared_ids_is_refused_naming_it(compose_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"the teacher puts 0\.\d+ of its probability on ids 32\.\.47.*"
                                          r"distill\.max_unshared_mass=0\.01"):
        run(_padded(compose_cfg, tmp_path, 48, 40), tmp_path / "refused")
    record = run(_padded(compose_cfg, tmp_path, 48, 40, "distill.max_unshared_mass=0.9"), tmp_path / "allowed")
    padded = record["padded_vocabulary"]
    assert (padded["shared_ids"], record["status"]) == (32, "completed") and 0.1 < padded["unshared_mass"] < 0.9
