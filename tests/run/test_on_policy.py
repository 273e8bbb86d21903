"""On-policy (GKD) and sequence-level distillation on the embedded language-model task: λ = 0 is the run without
the setting, bit for bit, and λ > 0 another; generated batches are timed apart; the teacher's sequences are made
once per decoding; the student's own samples are measured against the truth; where the method cannot apply it is
refused before anything runs."""

import json

import pytest
from conftest import LM_FAST
from transformers import LlamaConfig

from entrenar_bench.errors import ConfigError
from entrenar_bench.models.causal_lm import causal_lm
from entrenar_bench.run.app import run
from entrenar_bench.run.checks import validate_config

SAMPLED = ("sample_truth_kl", "sample_invalid")


def _fixed_text(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in SAMPLED}


def test_lambda_zero_is_the_run_without_the_setting_and_a_positive_lambda_is_not(compose_cfg, tmp_path):
    """λ set to 0 beside other generation settings against a config with none of the keys: the same training,
    while the same generation settings at λ = 0.5 train differently."""
    plain = run(compose_cfg(*LM_FAST, "seed=4"), tmp_path / "plain")
    generation = ("distill.prompt_tokens=3", "distill.new_tokens=6", "distill.sample_temperature=0.7")
    zero = run(compose_cfg(*LM_FAST, "seed=4", "distill.on_policy=0", *generation), tmp_path / "zero")
    half = run(compose_cfg(*LM_FAST, "seed=4", "distill.on_policy=0.5", *generation), tmp_path / "half")
    assert _fixed_text(zero["metrics"]) == _fixed_text(plain["metrics"]) and zero["time_split"].keys() == {"training_s"}
    assert zero["metrics"]["sample_truth_kl"] != plain["metrics"]["sample_truth_kl"]  # it samples at other settings
    assert _fixed_text(half["metrics"])["loss"] != plain["metrics"]["loss"] and half["generated_tokens"] > 0
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


def test_sequence_level_kd_reads_the_teachers_sequences_once_made_for_each_decoding(compose_cfg, tmp_path, caplog):
    first = run(compose_cfg(*LM_FAST, "distill.seq_kd=true", "seed=1"), tmp_path / "a")
    with caplog.at_level("INFO"):
        second = run(compose_cfg(*LM_FAST, "distill.seq_kd=true", "seed=2"), tmp_path / "b")
    assert first["status"] == second["status"] == "completed"
    assert "read the teacher's sequences from" in caplog.text and "stored the teacher's sequences" not in caplog.text
    caplog.clear()
    with caplog.at_level("INFO"):
        beam = run(compose_cfg(*LM_FAST, "distill.seq_kd=true", "distill.seq_kd_decoding=beam",
                               "distill.seq_kd_beams=2",
                               "seed=1"), tmp_path / "c")
    assert beam["status"] == "completed" and "stored the teacher's sequences" in caplog.text
    assert beam["metrics"]["loss"] != first["metrics"]["loss"]


def test_on_prompt_response_data_both_continue_the_whole_prompts(compose_cfg, tmp_path):
    pairs = [("Q: ab?", "xy."), ("Q: bab?", "yx."), ("Q: a?", "xxy."), ("Q: bb?", "yy.")] * 40
    (tmp_path / "pairs.jsonl").write_text("\n".join(json.dumps({"prompt": q, "response": r}) for q, r in pairs) + "\n")
    vocab = len(set("".join(q + r for q, r in pairs))) + 1
    causal_lm(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                          num_key_value_heads=2), vocab_size=vocab).save_pretrained(tmp_path / "teacher")
    data = ["+experiment=lm", "data=corpus", f"data.path={tmp_path / 'pairs.jsonl'}", "data.block_size=12",
            "teacher=pretrained_lm", f"teacher.model.path={tmp_path / 'teacher'}", "teacher.train.epochs=1",
            "train.epochs=1"]
    on_policy = run(compose_cfg(*data, "distill.on_policy=1"), tmp_path / "on_policy")
    assert on_policy["status"] == "completed" and on_policy["generated_tokens"] > 0
    samples = json.loads((tmp_path / "on_policy" / "generations.json").read_text())
    # whole prompts (with the pair's separator, data.pair_separator, where a tokenizer gives it a token of its own)
    assert all(s["prompt"].startswith("Q: ") and s["prompt"].rstrip().endswith("?") for s in samples)
    beam = run(compose_cfg(*data, "distill.seq_kd=true", "distill.seq_kd_decoding=beam"), tmp_path / "beam")
    assert beam["status"] == "completed"


@pytest.mark.parametrize("overrides, message", [
    (["distill.on_policy=0.5"], "needs a task that generates sequences; the data's task 'classification'"),
    ([*LM_FAST, "distill=none", "distill.on_policy=0.5"], "needs a logit term against the teacher"),
    ([*LM_FAST, "distill=progressive", "distill.on_policy=0.5"], "not with layer matching"),
    ([*LM_FAST, "distill.sample_top_p=0"], "distill.sample_top_p must be in (0, 1]"),
    ([*LM_FAST, "distill.seq_kd=true", "distill.prompt_tokens=16"],
     "distill.prompt_tokens=16 leaves nothing to generate in rows of data.seq_len=16"),
    ([*LM_FAST, "distill.seq_kd_decoding=nucleus"], "distill.seq_kd_decoding must be one of greedy, beam, sample"),
    ([*LM_FAST, "distill.seq_kd_beams=0"], "distill.seq_kd_beams must be >= 1"),
])
def test_where_it_cannot_apply_it_is_refused(compose_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        validate_config(compose_cfg(*overrides))
