"""A feature term defined in this file alone — a cosine loss between the student's projected last hidden states and
the teacher's — chosen by config (``+terms.cosine={_component_: <this module>.CosineHidden, weight: ..., layer: ...}``)
in a real run of the Hydra app, next to the strategy's own terms; nothing under entrenar_bench/ knows its name. An
entry the term cannot take stops the app before launch with one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import torch.nn.functional as F
from torch import nn

from entrenar_bench.distill import losses
from user_code import first_train_loss, package_files_naming, run_app

TERM = "CosineHidden"


class CosineHidden(nn.Module):
    """``1 − cos(P·h_s, h_t)`` per target token, masked token mean, between layer ``layer`` of the student's and of
    the teacher's (B, T, D) states; ``P`` a learned map from the student's width to the teacher's."""

    needs_hidden = True

    def __init__(self, student, teacher, layer: int = -1):
        super().__init__()
        self.layer = layer
        self.proj = nn.Linear(student.config.hidden_size, teacher.config.hidden_size)

    def forward(self, student, teacher, mask):
        cosine = F.cosine_similarity(self.proj(student.hidden[self.layer]), teacher.hidden[self.layer], dim=-1)
        return losses.masked_token_mean(1 - cosine, mask)


def _term(**knobs) -> str:
    entry = ", ".join(f"{key}: {value}" for key, value in knobs.items())
    return f"+terms.cosine={{_component_: {Path(__file__).stem}.{TERM}, {entry}}}"


def test_no_file_of_the_package_knows_the_users_term():
    assert not package_files_naming(TERM)


def test_a_feature_term_of_this_file_is_used_through_config(bench_home, tmp_path):
    runs = {}
    for name, overrides in (("kd", ()), ("cosine", (_term(weight=1.0, layer=-1),))):
        proc = run_app(bench_home, tmp_path / name, *overrides)
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs[name] = json.loads((tmp_path / name / "result.json").read_text())
    mine, kd = runs["cosine"], runs["kd"]
    assert mine["status"] == "completed" and mine["config_hash"] != kd["config_hash"]
    assert mine["config"]["terms"] == {"cosine": {"_component_": f"{Path(__file__).stem}.{TERM}", "weight": 1.0,
                                                  "layer": -1}}  # the record names the term and its knobs
    assert mine["distill"] == kd["distill"]  # the strategy's own settings are kd's
    widths = [mine["config"][role]["model"]["config"]["hidden_size"] for role in ("student", "teacher")]
    assert kd["params"]["projections"] == 0  # the term was built, sized by the models, and its map trained
    assert mine["params"]["projections"] == widths[0] * widths[1] + widths[1]
    # The same seed, data and strategy (kd, α 0.5, T 1): the logged training loss adds 1·(1 − cos) ∈ (0, 2].
    assert first_train_loss(tmp_path / "cosine") > first_train_loss(tmp_path / "kd") > 0


def test_an_entry_the_term_cannot_take_stops_the_app_before_launch(bench_home, tmp_path):
    proc = run_app(bench_home, tmp_path / "bad", _term(weight=1.0, layr=-1))
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "terms.cosine" in line]
    assert len(errors) == 1 and "'layr' is no knob of CosineHidden (its knobs: layer)" in errors[0], proc.stderr[-2000:]
    assert not (tmp_path / "bad" / "result.json").exists()
