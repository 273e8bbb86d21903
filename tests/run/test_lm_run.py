"""Language-model runs end to end in-process (tiny sizes): the record, every strategy and divergence, the
shared teacher-output cache (exact = online, top-k), a model and corpus of one's own, LoRA, bad settings."""

import json
import math
from pathlib import Path

import pytest
from transformers import LlamaConfig

from conftest import LM_FAST
from entrenar_bench.errors import ConfigError
from entrenar_bench.models.causal_lm import causal_lm
from entrenar_bench.run.app import run
from entrenar_bench.run.checks import validate_config


def _outputs(record: dict) -> list[str]:
    """The teacher stores beside the run's teacher: ``<split>-<form>`` per data key."""
    return sorted(p.parent.name for p in (Path(record["teacher"]["cache"]) / "outputs").glob("*/*/manifest.json"))


def test_a_language_model_run_records_what_it_measured(compose_cfg, tmp_path):
    record = run(compose_cfg(*LM_FAST), tmp_path)
    m = record["metrics"]
    assert record["status"] == "completed" and record["distill"]["name"] == "kd"
    for split in ("", "val_"):
        assert 0 <= m[f"{split}accuracy"] <= m[f"{split}bayes_accuracy"] <= 1     # the ceiling is above
        assert math.isclose(m[f"{split}perplexity"], math.exp(m[f"{split}loss"]), rel_tol=1e-5)
        assert m[f"{split}teacher_kl"] > 0 and m[f"{split}truth_kl"] > 0
    assert record["tokens_per_s"] > 0 and record["peak_memory_kind"] == "cpu_rss_growth"
    assert 0 < record["validation_s"] < record["time_s"]                    # the learning curve's passes, apart
    assert record["time_split"]["training_s"] == pytest.approx(record["time_s"] - record["validation_s"])
    measured = json.loads((Path(record["teacher"]["cache"]) / "teacher.json").read_text())
    assert measured["measured_s"] > measured["time_s"] > 0                  # trained, then measured
    assert {name.removeprefix("val_") for name in m} <= set(record["metric_directions"])  # each one's direction
    assert record["teacher"]["metrics"]["truth_kl"] > 0 and 0 < record["teacher"]["accuracy"] <= 1
    assert record["teacher_signal"] == {"mode": "cached", "form": "exact", "teacher_kl": "exact teacher"}
    assert {"test-exact", "train-exact", "val-exact"} <= set(_outputs(record))  # beside the teacher


def test_the_exact_teacher_cache_gives_the_metrics_of_the_online_teacher(compose_cfg, tmp_path):
    cached = run(compose_cfg(*LM_FAST, "seed=1"), tmp_path / "cached")
    online = run(compose_cfg(*LM_FAST, "seed=1", "distill.teacher_outputs=online"), tmp_path / "online")
    assert online["teacher_signal"] == {"mode": "online", "form": "exact", "teacher_kl": "exact teacher"}
    assert cached["metrics"] == online["metrics"]


def test_the_student_subset_does_not_retrain_the_teacher(compose_cfg, tmp_path):
    a = run(compose_cfg(*LM_FAST), tmp_path / "a")
    b = run(compose_cfg(*LM_FAST, "data.train_subset=32", "data.eval_batch_size=64"), tmp_path / "b")
    assert a["teacher"]["cache"] == b["teacher"]["cache"]   # one teacher; its outputs over each subset stored apart
    assert _outputs(b).count("train-exact") >= 2


def test_the_top_k_teacher_cache(compose_cfg, tmp_path):
    record = run(compose_cfg(*LM_FAST, "distill.teacher_top_k=4"), tmp_path)
    assert record["status"] == "completed" and record["teacher_signal"] == {
        "mode": "cached", "form": "top4", "tail": "bucket",
        "teacher_kl": "top4 store, tail spread evenly over the other tokens"}
    assert {"train-top4", "val-top4", "test-top4"} <= set(_outputs(record))


@pytest.mark.parametrize("overrides", [
    ["distill=none"], ["distill=mse"], ["distill=progressive"], ["distill=attention"], ["distill=combined"],
    ["distill.logit_loss=reverse_kl"], ["distill.logit_loss=jsd", "distill.beta=0.3"], ["distill.logit_loss=skew_kl"],
    ["distill.logit_loss=skew_reverse_kl"], ["distill.logit_loss=tvd"], ["distill=combined", "ablate=temperature"],
])
def test_every_strategy_and_divergence_on_a_language_model(compose_cfg, tmp_path, overrides):
    record = run(compose_cfg(*LM_FAST, *overrides), tmp_path)
    assert record["status"] == "completed" and 0 < record["metrics"]["accuracy"] <= 1
    hidden = record["distill"]["layer_weight"] > 0 or record["distill"]["attention_weight"] > 0
    assert (record["params"]["projections"] > 0) == (record["distill"]["layer_weight"] > 0)
    if record["teacher"]:  # strategies that match hidden states or attentions run the teacher online
        assert record["teacher_signal"]["mode"] == ("online" if hidden else "cached")


def test_distil_from_a_saved_model_on_a_corpus_file(compose_cfg, tmp_path):
    text = "the quick brown fox jumps over the lazy dog. " * 40
    (tmp_path / "corpus.txt").write_text(text)
    teacher = causal_lm(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                                    num_key_value_heads=2), vocab_size=len(set(text)) + 1)
    teacher.save_pretrained(tmp_path / "teacher")
    overrides = ["+experiment=lm", "data=corpus", f"data.path={tmp_path / 'corpus.txt'}", "data.block_size=16",
                 "teacher=pretrained_lm", f"teacher.model.path={tmp_path / 'teacher'}", "train.epochs=2"]
    record = run(compose_cfg(*overrides, "teacher.train.epochs=1", "distill=progressive"), tmp_path / "tuned")
    assert (record["status"] == "completed"
            and record["params"]["teacher"] == sum(p.numel() for p in teacher.parameters()))
    assert 0 < record["metrics"]["accuracy"] <= 1 and "truth_kl" not in record["metrics"]  # no known truth here
    as_is = run(compose_cfg(*overrides, "teacher.train.epochs=0"), tmp_path / "as_is")  # the saved model, measured
    assert as_is["status"] == "completed"
    samples = json.loads((tmp_path / "as_is" / "generations.json").read_text())  # greedy, decoded by the tokenizer
    assert len(samples) == 4 and all(len(s["completion_ids"]) == 32 and set(s["prompt"]) <= set(text) for s in samples)
    assert as_is["teacher"]["metrics"]["accuracy"] < record["teacher"]["metrics"]["accuracy"]


def test_lora_on_a_language_model_trains_fewer_parameters_than_full_fine_tuning(compose_cfg, tmp_path):
    small_base = ["finetune.base.model.config.hidden_size=64", "finetune.base.model.config.intermediate_size=128",
                  "finetune.base.model.config.num_attention_heads=2",
                  "finetune.base.model.config.num_key_value_heads=2",
                  "finetune.epochs=1"]
    full = run(compose_cfg(*LM_FAST, *small_base, "finetune=full"), tmp_path / "full")
    lora = run(compose_cfg(*LM_FAST, *small_base, "finetune=lora", "finetune.r=4", "finetune.alpha=8"),
               tmp_path / "lora")
    assert full["finetune"]["base"] == lora["finetune"]["base"]            # one cached base student
    assert full["finetune"]["base"]["name"] == "llama_base" and full["params"]["student"] > 40_000  # not llama_micro
    assert (full["finetune"]["epochs"], full["finetune"]["lr"]) == (1, 1e-3)  # finetune.epochs and finetune.lr
    assert lora["finetune"]["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                  "down_proj"]
    assert 0 < lora["params"]["trainable"] < full["params"]["trainable"] / 3
    assert full["params"]["trainable"] == full["finetune"]["base"]["params"]


@pytest.mark.parametrize("override, message", [
    ("distill.logit_loss=kl_div", "distill.logit_loss must be one of kl, reverse_kl, jsd"),
    ("distill.beta=1.5", "distill.beta must be between 0 and 1"),
    ("distill.teacher_outputs=disk", "distill.teacher_outputs must be one of cached, online"),
    ("distill.teacher_top_k=-1", "distill.teacher_top_k must be >= 0"),
])
def test_bad_language_model_settings_are_rejected(compose_cfg, override, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(compose_cfg(*LM_FAST, override))


def test_the_schema_rejects_an_unknown_distill_key(compose_cfg):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException):
        compose_cfg(*LM_FAST, "distill.top_k=4")


def test_every_run_records_its_metrics_before_training(compose_cfg, tmp_path):
    record = run(compose_cfg(*LM_FAST, "seed=2"), tmp_path)
    before, after = record["metrics_before"], record["metrics"]
    assert set(before) <= set(after) and before["perplexity"] > after["perplexity"]
    assert before["loss"] == pytest.approx(math.log(before["perplexity"]), rel=1e-5)


def test_a_teacher_store_above_the_limit_is_refused_before_the_teacher_runs(compose_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"exact teacher store: .* positions × 128 B = .*above "
                                          r"limits.max_teacher_store_gb=1e-05; the top-64 form would take"):
        run(compose_cfg(*LM_FAST, "distill.teacher_top_k=0", "limits.max_teacher_store_gb=0.00001"), tmp_path)
    assert not (tmp_path / "generations.json").exists()  # nothing trained


def test_the_stored_form_follows_the_vocabulary_unless_set():
    from entrenar_bench.distill.settings import DistillSettings
    from entrenar_bench.teacher_signal.plan import stored_top_k

    assert stored_top_k(DistillSettings(), 32) == 0          # the embedded task: exact
    assert stored_top_k(DistillSettings(), 49_152) == 64     # a real vocabulary: top-64
    assert stored_top_k(DistillSettings(teacher_top_k=0), 49_152) == 0
