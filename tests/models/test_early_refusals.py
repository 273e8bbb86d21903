"""Settings known to fail before anything trains are refused before launch, one line each (ConfigError, exit 2):
a from-teacher student's layers its teacher lacks, a damaged weights file, layer matching on a model without
layers, a LoRA target the model lacks, a student narrower than its teacher's logits; a top-k store as large as
the vocabulary is the exact form. (The corpus's own refusals, a UTF-16 file among them: tests/data/.)"""

import json

import pytest

from entrenar_bench.errors import ConfigError
from entrenar_bench.run.checks import validate_config
from pretrained_dirs import save_llama, word_tokenizer

LAYERS = 3


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"text": f"the {w} sat on a mat ."}) + "\n"
                            for w in "fox dog cat mat far away lazy quick".split()) * 4)
    return path


@pytest.fixture
def smollm2_like(compose_cfg, tmp_path, corpus):
    """+experiment=smollm2 with a tiny word-level teacher of 3 layers in place of SmolLM2."""
    save_llama(tmp_path / "teacher", layers=LAYERS, tokenizer=word_tokenizer())

    def _compose(*overrides):
        return compose_cfg("+experiment=smollm2", f"teacher.model.path={tmp_path / 'teacher'}", f"data.path={corpus}",
                           "student.layers=first:2", "data.val_fraction=0.1", "data.test_fraction=0.1", *overrides)

    return _compose


def refused(cfg) -> str:
    with pytest.raises(ConfigError) as error:
        validate_config(cfg)
    assert "\n" not in str(error.value)
    return str(error.value)


@pytest.mark.parametrize("layers, message", [
    ("first:0", f"student.layers=first:0: the teacher has {LAYERS} layers, so K must be 1..{LAYERS}"),
    (f"first:{LAYERS + 1}", f"student.layers=first:{LAYERS + 1}: the teacher has {LAYERS} layers, so K must be 1.."),
    ("[0,0,1]", f"student.layers=[0, 0, 1]: indices must increase, each in 0..{LAYERS - 1} (the teacher's layers)"),
    (f"[0,{LAYERS}]", f"student.layers=[0, {LAYERS}]: indices must increase, each in 0..{LAYERS - 1}"),
])
def test_a_from_teacher_students_layers_must_be_its_teachers(smollm2_like, layers, message):
    assert refused(smollm2_like(f"student.layers={layers}")).startswith(message)
    validate_config(smollm2_like(f"student.layers=[0,{LAYERS - 1}]"))  # and a good list passes


@pytest.mark.parametrize("damage, reason", [
    (lambda data: data[:len(data) // 2], "truncated or padded"),
    (lambda data: data + b"\0" * 16, "truncated or padded"),
    (lambda data: b"\xff" * 8 + data[8:], "no safetensors header"),
    (lambda data: data[:8] + b"#" + data[9:], "its header is not JSON"),
])
def test_a_damaged_weights_file_is_refused_by_name(smollm2_like, tmp_path, damage, reason):
    weights = tmp_path / "teacher" / "model.safetensors"
    weights.write_bytes(damage(weights.read_bytes()))
    assert refused(smollm2_like()) .startswith(f"teacher.model.path={tmp_path / 'teacher'}: model.safetensors is "
                                               f"damaged (")
    assert reason in refused(smollm2_like())


def test_layer_matching_needs_layers_on_both_sides(compose_cfg):
    assert refused(compose_cfg("distill=progressive", "student=mlp", "student.model.hidden=[]")) == (
        "distill=progressive matches layers (distill.layer_weight) but the student mlp has none (student.model: "
        "0 layers)")
    assert refused(compose_cfg("+experiment=lm", "distill=combined", "teacher.model.config.num_hidden_layers=0")) \
        .startswith("distill=combined matches layers (distill.layer_weight) but the teacher llama_tiny has none")
    validate_config(compose_cfg("distill=progressive", "student=mlp", "student.model.hidden=[]",
                                "distill.layer_weight=0"))


def test_a_lora_target_the_model_lacks(smollm2_like, compose_cfg):
    message = refused(smollm2_like("finetune=lora", "finetune.target_modules=[q_proj,qkv_proj]"))
    assert message.startswith("finetune.target_modules: qkv_proj not in the model it adapts (student.model; its "
                              "modules: ") and "q_proj" in message
    validate_config(smollm2_like("finetune=lora", "finetune.target_modules=[q_proj,v_proj]"))
    assert refused(compose_cfg("finetune=lora", "student=mlp", "finetune.target_modules=[fc]")).startswith(
        "finetune.target_modules: fc not in the model it adapts (student.model; its modules: dropout, head, layers)")
    assert refused(compose_cfg("+experiment=lm", "finetune=lora", "finetune.target_modules=[c_attn]")).startswith(
        "finetune.target_modules: c_attn not in the model it adapts (finetune.base.model;")


def test_a_top_k_store_that_keeps_every_token_is_the_exact_form():
    from entrenar_bench.distill.settings import DistillSettings
    from entrenar_bench.teacher_signal.sizing import stored_top_k

    assert [stored_top_k(DistillSettings(teacher_top_k=k), 49152) for k in (100000, 49152, 49151, 64, 0)] == \
        [0, 0, 49151, 64, 0]
    assert stored_top_k(DistillSettings(teacher_top_k=None), 49152) == 64


def test_a_tokenizer_smaller_than_the_teachers_logits_is_refused(compose_cfg, tmp_path, corpus):
    save_llama(tmp_path / "wide", layers=1, rows=200)  # no tokenizer of its own: the data's ids are its first rows
    base = ["+experiment=lm", "data=corpus", f"data.path={corpus}", "teacher=pretrained_lm",
            f"teacher.model.path={tmp_path / 'wide'}"]
    chars = len(set("".join(json.loads(line)["text"] for line in corpus.read_text().splitlines()))) + 1
    assert refused(compose_cfg(*base)).startswith(
        f"data.tokenizer=char has {chars} tokens but the teacher pretrained_lm's vocabulary has 200 (no tokenizer): "
        f"a student built for the data predicts {chars} tokens, the teacher 200;")
    validate_config(compose_cfg(*base, "student=pretrained_lm", f"student.model.path={tmp_path / 'wide'}"))  # as wide


@pytest.mark.slow
@pytest.mark.parametrize("override, message", [
    ("student.layers=[0,0,1]", "student.layers=[0, 0, 1]: indices must increase"),
    ("finetune=lora finetune.target_modules=[qkv]", "finetune.target_modules: qkv not in the model it adapts"),
])
def test_the_app_and_a_compare_sweep_refuse_before_the_first_job(tmp_path, corpus, capsys, monkeypatch, override,
                                                                 message):
    import os
    import subprocess
    import sys

    from entrenar_bench.cli.main import COMMAND_MODULES
    from entrenar_bench.cli.main import run_cli as cli

    save_llama(tmp_path / "teacher", layers=LAYERS, tokenizer=word_tokenizer())
    home, run_dir = tmp_path / "home", tmp_path / "run"
    overrides = ["+experiment=smollm2", f"teacher.model.path={tmp_path / 'teacher'}", f"data.path={corpus}",
                 "student.layers=first:2", "data.val_fraction=0.1", "data.test_fraction=0.1", *override.split()]
    done = subprocess.run([sys.executable, "-m", "entrenar_bench.run", *overrides, f"hydra.run.dir={run_dir}"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore", "ENTRENAR_BENCH_HOME": str(home)})
    assert done.returncode == 2 and done.stderr.strip() == f"error: {refused_line(done.stderr, message)}", done.stderr
    assert not (run_dir / "result.json").exists() and not (home / "outputs" / "cache" / "teachers").exists()
    monkeypatch.setenv("ENTRENAR_BENCH_HOME", str(home))
    capsys.readouterr()  # what saving the teacher printed
    assert cli(["compare", "--strategies", "none,kd", "--runs", "1", "--", *overrides], "entrenar-bench",
               COMMAND_MODULES) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not (home / "outputs" / "compare").exists() and not (home / "outputs" / "cache" / "teachers").exists()


def refused_line(stderr: str, message: str) -> str:
    line = stderr.strip().removeprefix("error: ")
    assert line.startswith(message) and "\n" not in line, stderr
    return line
