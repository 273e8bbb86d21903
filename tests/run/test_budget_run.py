"""Runs budgeted in tokens: equal tokens whatever the batch size, compute split by role, the held-out curve
against tokens, recovery and the trivial baselines in the record."""

import csv

import pytest

from conftest import LM_FAST
from entrenar_bench.run.app import run
from entrenar_bench.models.causal_lm import causal_lm  # noqa: F401  (the LM stack, loaded once)

TOKENS = 3000


def test_groups_with_different_batch_sizes_see_the_same_tokens(compose_cfg, tmp_path):
    records = {b: run(compose_cfg(*LM_FAST, f"data.batch_size={b}", f"train.tokens={TOKENS}"), tmp_path / str(b))
               for b in (4, 16)}
    per_row = records[4]["budget"]["tokens_per_row"]
    for b, record in records.items():
        assert record["status"] == "completed"
        assert TOKENS <= record["tokens_seen"] < TOKENS + b * per_row      # the target, less than a batch over
        assert record["budget"]["tokens"] == TOKENS and record["budget"]["steps"] == -(-TOKENS // (b * per_row))
    assert abs(records[4]["tokens_seen"] - records[16]["tokens_seen"]) <= 16 * per_row


def test_a_run_records_its_flops_by_role_and_its_recovery(compose_cfg, tmp_path):
    online = run(compose_cfg(*LM_FAST, f"train.tokens={TOKENS}", "distill.teacher_outputs=online"), tmp_path / "o")
    flops, seen = online["flops"], online["tokens_seen"]
    n_s, n_t = flops["non_embedding_params"]["student"], flops["non_embedding_params"]["teacher"]
    assert 0 < n_s < online["params"]["student"] and n_t > n_s
    assert flops["student"] == 6 * n_s * seen and flops["teacher"] == 2 * n_t * seen
    assert flops["generation"] == 0 and flops["total"] == flops["student"] + flops["teacher"]
    none = run(compose_cfg(*LM_FAST, f"train.tokens={TOKENS}", "distill=none"), tmp_path / "n")
    assert none["flops"]["teacher"] == 0 and none["flops"]["teacher_mode"] is None
    for record in (online, none):   # the teacher is cached by then: the run without one still measures against it
        r = record["recovery_of"]
        assert record["recovery"] == pytest.approx((r["before"] - r["after"]) / (r["before"] - r["teacher"]))
        assert record["baselines"]["uniform"] > 0 and record["baselines"]["unigram"] > 0


def test_the_held_out_curve_is_drawn_against_tokens(compose_cfg, tmp_path):
    record = run(compose_cfg(*LM_FAST, f"train.tokens={TOKENS}", "train.eval_every_tokens=1000", "train.eval_rows=16"),
                 tmp_path)
    with open(tmp_path / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    points = [row for row in rows if row.get("tokens")]
    tokens = [float(p["tokens"]) for p in points]
    assert tokens[0] == 0 and tokens[-1] == record["tokens_seen"] and tokens == sorted(tokens) and len(tokens) >= 4
    assert all(float(p["heldout/loss"]) > 0 for p in points)
    assert record["curve"]["rows"] == 16 and record["curve"]["teacher"] > 0
    # budgeted in tokens: the curve against tokens, no validation pass at the epochs' ends (still once at the end)
    assert record["budget"]["epochs"] > 1 and any(row.get("train/loss") for row in rows)
    assert not any(row.get("val/loss") for row in rows) and record["validation_s"] == 0
    assert record["metrics"]["val_loss"] > 0


@pytest.mark.parametrize("override,message", [("train.tokens=0", "train.tokens must be >= 1"),
                                              ("train.eval_every_tokens=0", "train.eval_every_tokens must be >= 1"),
                                              ("train.eval_rows=0", "train.eval_rows must be >= 1")])
def test_bad_budgets_are_refused_before_anything_runs(compose_cfg, override, message):
    from entrenar_bench.errors import ConfigError
    from entrenar_bench.run.checks import check_settings

    with pytest.raises(ConfigError, match=message):
        check_settings(compose_cfg(*LM_FAST, override))
