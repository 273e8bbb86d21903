"""On-policy (GKD) and sequence-level distillation on the embedded language-model task: λ = 0 is the run without
the setting, bit for bit; generated batches are timed apart; the teacher's sequences are made once; the student's
own samples are measured against the truth; where the method cannot apply it is refused before anything runs."""

import pytest
from conftest import LM_FAST

from entrenar_bench.errors import ConfigError
from entrenar_bench.run.app import run
from entrenar_bench.run.checks import validate_config

SAMPLED = ("sample_truth_kl", "sample_invalid")


def _fixed_text(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in SAMPLED}


def test_lambda_zero_is_the_run_without_the_setting(compose_cfg, tmp_path):
    plain = run(compose_cfg(*LM_FAST, "seed=4"), tmp_path / "plain")
    zero = run(compose_cfg(*LM_FAST, "seed=4", "distill.on_policy=0"), tmp_path / "zero")
    assert zero["metrics"] == plain["metrics"] and zero["time_split"].keys() == {"training_s"}
    assert 0 <= plain["metrics"]["sample_invalid"] <= 1 and plain["metrics"]["sample_truth_kl"] > 0
    assert plain["teacher"]["sample_metrics"]["sample_truth_kl"] > 0  # the teacher's own samples, for reference


def test_an_on_policy_run_times_its_generation(compose_cfg, tmp_path):
    record = run(compose_cfg(*LM_FAST, "distill.on_policy=1", "distill.prompt_tokens=4"), tmp_path)
    split = record["time_split"]
    assert record["status"] == "completed" and split["generation_s"] > 0 and split["teacher_s"] > 0
    assert split["training_s"] + split["generation_s"] + split["teacher_s"] == \
        pytest.approx(record["time_s"] - record["validation_s"])          # the learning curve's passes apart
    assert record["generated_tokens"] == 2 * 64 * 12  # every batch of both epochs: 64 sequences, 16 - 4 new tokens
    assert record["generated_tokens_per_s"] > 0


def test_sequence_level_kd_reads_the_teachers_sequences_once_made(compose_cfg, tmp_path, caplog):
    first = run(compose_cfg(*LM_FAST, "distill.seq_kd=true", "seed=1"), tmp_path / "a")
    with caplog.at_level("INFO"):
        second = run(compose_cfg(*LM_FAST, "distill.seq_kd=true", "seed=2"), tmp_path / "b")
    assert first["status"] == second["status"] == "completed"
    assert "read the teacher's sequences from" in caplog.text and "stored the teacher's sequences" not in caplog.text


@pytest.mark.parametrize("overrides, message", [
    (["distill.on_policy=0.5"], "needs a task that generates sequences; the data's task 'classification'"),
    ([*LM_FAST, "distill=none", "distill.on_policy=0.5"], "needs a logit term against the teacher"),
    ([*LM_FAST, "distill=progressive", "distill.on_policy=0.5"], "not with layer matching"),
    ([*LM_FAST, "distill.sample_top_p=0"], "distill.sample_top_p must be in (0, 1]"),
])
def test_where_it_cannot_apply_it_is_refused(compose_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        validate_config(compose_cfg(*overrides))
