"""Before anything trains: every pretrained model's directory is loadable as data (safetensors, no code of
its own), and teacher, student and data share one vocabulary; each failure is one line."""

import json
import pickle
import subprocess
import sys

import pytest

from entrenar_bench.errors import ConfigError
from entrenar_bench.models.causal_lm import pretrained_causal_lm
from entrenar_bench.models.references import with_local_files
from entrenar_bench.models.vocabulary import check_pretrained_models
from pretrained_dirs import WORDS, save_llama, word_tokenizer


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.jsonl"
    path.write_text("".join(json.dumps({"text": f"the {w} sat on a mat ."}) + "\n" for w in WORDS[:8]))
    return path


@pytest.fixture
def smollm2_like(compose_cfg, tmp_path, corpus):
    """+experiment=smollm2 with a tiny word-level teacher in place of SmolLM2."""
    save_llama(tmp_path / "teacher", layers=3, tokenizer=word_tokenizer())

    def _compose(*overrides):
        return compose_cfg("+experiment=smollm2", f"teacher.model.path={tmp_path / 'teacher'}",
                           f"data.path={corpus}", "student.layers=first:2", *overrides)

    return _compose


def check(cfg):
    check_pretrained_models(with_local_files(cfg))


def test_the_data_takes_the_teachers_tokenizer_by_default(smollm2_like, tmp_path):
    cfg = with_local_files(smollm2_like())
    assert cfg.data.tokenizer == str(tmp_path / "teacher")
    check_pretrained_models(cfg)
    check(smollm2_like(f"data.tokenizer={tmp_path / 'teacher'}"))  # the same one, named


def test_padded_embedding_rows_are_allowed_but_fewer_rows_than_tokens_are_not(smollm2_like, tmp_path):
    save_llama(tmp_path / "padded", layers=2, rows=64, tokenizer=word_tokenizer())  # rows past the tokenizer
    check(smollm2_like(f"teacher.model.path={tmp_path / 'padded'}"))
    save_llama(tmp_path / "short", layers=2, rows=8, tokenizer=word_tokenizer())
    with pytest.raises(ConfigError, match=r"^the teacher smollm2 has 8 token embeddings, fewer than its "
                                          rf"tokenizer's {len(word_tokenizer())} tokens$"):
        check(smollm2_like(f"teacher.model.path={tmp_path / 'short'}"))


def test_character_ids_for_a_teacher_with_a_tokenizer_are_refused_naming_both(smollm2_like, corpus):
    chars = len(set("".join(json.loads(line)["text"] for line in corpus.read_text().splitlines()))) + 1
    size = len(word_tokenizer())
    with pytest.raises(ConfigError) as refused:
        check(smollm2_like("data.tokenizer=char"))
    assert str(refused.value).startswith(f"data.tokenizer=char has {chars} tokens but the teacher smollm2's "
                                         f"vocabulary has {size} (tokenizer {size})")
    assert "\n" not in str(refused.value)


def test_another_tokenizer_is_refused_even_of_the_same_size(smollm2_like, tmp_path):
    other = word_tokenizer(list(reversed(WORDS)))
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(ConfigError, match=rf"^data.tokenizer={tmp_path / 'other'} has {len(other)} tokens but the "
                                          rf"teacher smollm2's vocabulary has {len(other)} \(tokenizer {len(other)}\);"
                                          r" \d+ tokens have other ids"):
        check(smollm2_like(f"data.tokenizer={tmp_path / 'other'}"))


def test_a_model_without_a_tokenizer_takes_data_whose_ids_it_covers(compose_cfg, tmp_path, corpus):
    chars = len(set("".join(json.loads(line)["text"] for line in corpus.read_text().splitlines()))) + 1
    save_llama(tmp_path / "big", layers=1, rows=chars)  # no tokenizer: the default is char (more rows: see
    # tests/models/test_early_refusals.py, a student built for the data would be narrower than the teacher)
    base = ["+experiment=lm", "data=corpus", f"data.path={corpus}", "teacher=pretrained_lm"]
    cfg = with_local_files(compose_cfg(*base, f"teacher.model.path={tmp_path / 'big'}"))
    assert cfg.data.tokenizer == "char"
    check_pretrained_models(cfg)
    save_llama(tmp_path / "small", layers=1, rows=4)
    with pytest.raises(ConfigError, match=r"^data.tokenizer=char has \d+ tokens but the teacher pretrained_lm's "
                                          r"vocabulary has 4 \(no tokenizer\): ids past its embeddings"):
        check(compose_cfg(*base, f"teacher.model.path={tmp_path / 'small'}"))


@pytest.mark.parametrize("override, message", [
    ("teacher.model.path=/nonexistent", r"^teacher.model.path=/nonexistent: no such directory \(a model directory "
                                        r"written by save_pretrained, or a .gguf file\)$"),
    ("teacher.model.path=/nonexistent.gguf", r"^teacher.model.path=/nonexistent.gguf: no such GGUF file$"),
    ("data.tokenizer=/nonexistent", r"^data.tokenizer=/nonexistent: no such directory"),
    ("student.model.path=/tmp", r"^student.model.path=/tmp: no config.json in it"),
])
def test_missing_inputs_are_one_line(smollm2_like, override, message):
    with pytest.raises(ConfigError, match=message):
        check(smollm2_like(override))


def test_a_garbage_gguf_is_one_line(smollm2_like, tmp_path):
    (tmp_path / "garbage.gguf").write_bytes(b"\x00not a gguf" * 100)
    with pytest.raises(ConfigError, match=rf"^teacher.model.path={tmp_path / 'garbage.gguf'}: not a GGUF file"):
        check(smollm2_like(f"teacher.model.path={tmp_path / 'garbage.gguf'}"))


def test_a_gguf_without_the_gguf_package_says_what_to_install(smollm2_like, tmp_path, monkeypatch):
    import importlib.util

    (tmp_path / "m.gguf").write_bytes(b"GGUF" + b"\x00" * 64)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gguf" else real(name, *a))
    with pytest.raises(ConfigError, match=r"needs the gguf package \(pip install 'entrenar-bench\[gguf\]'\)$"):
        check(smollm2_like(f"teacher.model.path={tmp_path / 'm.gguf'}"))


CODE = "import pathlib; pathlib.Path({marker!r}).write_text('ran')\n"


def test_a_model_that_asks_to_run_its_own_code_is_refused_and_its_code_never_runs(smollm2_like, tmp_path):
    directory, marker = tmp_path / "remote", tmp_path / "code-ran"
    save_llama(directory, layers=1, tokenizer=word_tokenizer())
    config = json.loads((directory / "config.json").read_text())
    config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModelForCausalLM": "evil.EvilModel"}
    (directory / "config.json").write_text(json.dumps(config))
    (directory / "evil.py").write_text(CODE.format(marker=str(marker)))
    with pytest.raises(ConfigError, match=r"asks to run the model's own code \(auto_map\); entrenar-bench never "
                                          r"enables trust_remote_code$"):
        check(smollm2_like(f"teacher.model.path={directory}"))
    with pytest.raises(ConfigError, match="auto_map"):
        pretrained_causal_lm(str(directory))
    assert not marker.exists()


class Payload:
    """Unpickling this runs code: what a pickle checkpoint can do."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (CODE.format(marker=str(self.marker)),))


def test_a_pickle_checkpoint_is_never_loaded(smollm2_like, tmp_path):
    directory, marker = tmp_path / "pickled", tmp_path / "unpickled"
    save_llama(directory, layers=1, tokenizer=word_tokenizer())
    (directory / "model.safetensors").unlink()
    with open(directory / "pytorch_model.bin", "wb") as f:
        pickle.dump({"weights": Payload(marker)}, f)
    with pytest.raises(ConfigError, match=r"only a pickle checkpoint \(pytorch_model.bin\), which is never loaded"):
        check(smollm2_like(f"teacher.model.path={directory}"))
    with pytest.raises(ConfigError, match="never loaded"):
        pretrained_causal_lm(str(directory))
    from transformers import AutoModelForCausalLM  # and the loader itself, asked for safetensors, refuses it

    with pytest.raises(OSError):
        AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, use_safetensors=True)
    assert not marker.exists()


@pytest.mark.slow
@pytest.mark.parametrize("override, message", [
    ("data.tokenizer=char", "error: data.tokenizer=char has "),
    ("teacher.model.path=/nonexistent", "error: teacher.model.path=/nonexistent: no such directory"),
])
def test_the_app_refuses_before_anything_runs_exit_2(tmp_path, corpus, override, message):
    save_llama(tmp_path / "teacher", layers=2, tokenizer=word_tokenizer())
    run_dir, home = tmp_path / "run", tmp_path / "home"  # a home of its own: no other test's teachers
    done = subprocess.run(
        [sys.executable, "-m", "entrenar_bench.run", "+experiment=smollm2",
         f"teacher.model.path={tmp_path / 'teacher'}",
         f"data.path={corpus}", override, f"hydra.run.dir={run_dir}"],
        capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "PYTHONWARNINGS": "ignore", "ENTRENAR_BENCH_HOME": str(home)})
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().startswith(message) and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (run_dir / "result.json").exists() and not (home / "outputs" / "cache" / "teachers").exists()
