"""Pruned students' bad settings are refused before launch in one line (exit 2), and calibration reads the
training split only."""

import json
import os
import subprocess
import sys

import pytest
import torch
from omegaconf import OmegaConf
from transformers import GPT2Config, GPT2LMHeadModel

from conftest import CONF_DIR
from entrenar_bench.data.text import TokenDataModule
from entrenar_bench.errors import ConfigError
from entrenar_bench.models.pruning import importance
from entrenar_bench.run.checks import validate_config
from entrenar_bench.run.model_cache import build_model
from pretrained_dirs import WORDS, save_gqa_llama, word_tokenizer


@pytest.fixture
def pruned_cfg(compose_cfg, tmp_path):
    """+experiment=smollm2 with a tiny GQA teacher of 4 layers and a corpus of about 8 blocks of 16 tokens."""
    save_gqa_llama(tmp_path / "teacher")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": f"the {w} sat on a mat ."}) + "\n" for w in WORDS * 2))

    def _compose(*overrides):
        return compose_cfg("+experiment=smollm2", f"teacher.model.path={tmp_path / 'teacher'}", f"data.path={corpus}",
                           "data.block_size=16", "data.val_fraction=0.1", "data.test_fraction=0.1",
                           "student.method=block_influence", "student.keep=2",
                           "student.calibration_blocks=2", *overrides)

    return _compose


def test_good_settings_pass(pruned_cfg):
    validate_config(pruned_cfg())
    validate_config(pruned_cfg("student.width.heads=2", "student.width.mlp_ratio=0.5", "student.width.hidden_ratio=1"))
    validate_config(pruned_cfg("student.method=angular", "student.keep=4"))


@pytest.mark.parametrize("overrides, message", [
    (["student.keep=0"], r"student.keep=0: the teacher has 4 layers, so keep 1..4"),
    (["student.keep=5"], r"student.keep=5: the teacher has 4 layers, so keep 1..4"),
    (["student.method=shortest"], r"student.method must be one of first, spread, list, block_influence, angular"),
    (["student.width.mlp_ratio=0"], r"student.width.mlp_ratio must be in \(0, 1\], got 0"),
    (["student.width.hidden_ratio=1.5"], r"student.width.hidden_ratio must be in \(0, 1\], got 1.5"),
    (["student.width.heads=3"], r"student.width.heads=3: the teacher's 4 query heads form 2 key/value groups of 2; "
                                r"keep a multiple of 2 \(2..4\)"),
    (["student.width.heads=6"], r"student.width.heads=6: the teacher's 4 query heads"),
    (["student.calibration_blocks=500"], r"student.calibration_blocks=500 but the training split of .* has at most "
                                         r"\d+ blocks of 16 tokens"),
    (["student.params=10"], r"student.params=10 is out of reach with 2 layers and 4 heads: from \d+ to \d+ parameters"),
    (["student.params=1000", "student.width.mlp_ratio=0.5"], r"student.params sets the MLP and hidden widths itself"),
])
def test_bad_pruning_settings_are_one_line(pruned_cfg, overrides, message):
    with pytest.raises(ConfigError, match=f"^{message}") as refused:
        validate_config(pruned_cfg(*overrides))
    assert "\n" not in str(refused.value)


def test_width_pruning_of_an_architecture_it_does_not_know_names_it(pruned_cfg, tmp_path):
    GPT2LMHeadModel(GPT2Config(vocab_size=len(word_tokenizer()), n_embd=16, n_layer=2, n_head=2,
                               n_positions=64)).save_pretrained(tmp_path / "gpt2")
    word_tokenizer().save_pretrained(tmp_path / "gpt2")
    other = f"teacher.model.path={tmp_path / 'gpt2'}"
    validate_config(pruned_cfg(other, "student.keep=1"))  # depth alone needs no architecture's modules
    with pytest.raises(ConfigError, match=r"^width pruning \(student.width, student.params\) knows llama models; "
                                          r"the teacher is a gpt2 model \(GPT2LMHeadModel\)$"):
        validate_config(pruned_cfg(other, "student.keep=1", "student.width.mlp_ratio=0.5"))


class Poisoned:
    """A split nobody may read."""

    @property
    def tensors(self):
        raise AssertionError("calibration read a validation or test block")

    def __len__(self):
        raise AssertionError("calibration read a validation or test block")


class Blocks(TokenDataModule):
    def load_tokens(self):
        self.vocab_size = len(word_tokenizer())
        generator = torch.Generator().manual_seed(0)
        ids = torch.randint(0, self.vocab_size, (40, 12), generator=generator)
        mask = torch.ones_like(ids, dtype=torch.bool)
        mask[:, 0] = False
        return ids.numpy(), mask.numpy()


def test_calibration_never_reads_validation_or_test_blocks(tmp_path, monkeypatch):
    save_gqa_llama(tmp_path / "teacher")
    data = Blocks(val_fraction=0.25, test_fraction=0.25, train_subset=4)
    data.setup("fit")
    train_ids = data.splits["train"].tensors[0].clone()
    held_out = torch.cat([data.splits[s].tensors[0] for s in ("val", "test")])
    data.splits["val"], data.splits["test"] = Poisoned(), Poisoned()
    seen = []
    real = importance.measure

    def spying(model, layers, ids, mask, batch_size=8):
        seen.append(ids.clone())
        return real(model, layers, ids, mask, batch_size)

    monkeypatch.setattr("entrenar_bench.models.from_teacher.measure", spying)
    cfg = OmegaConf.create({"teacher": {"model": {"path": str(tmp_path / "teacher")}},
                            "paths": {"cache_dir": str(tmp_path / "cache")},
                            "student": OmegaConf.load(CONF_DIR / "student" / "from_teacher.yaml")})
    cfg.student.method, cfg.student.keep, cfg.student.calibration_blocks = "block_influence", 2, 12
    cfg.student.width.mlp_ratio = 0.5
    student = build_model(cfg.student.model, data)
    assert student.config.pruning["calibration_blocks"] == 12 and student.config.num_hidden_layers == 2
    (ids,) = seen
    assert torch.equal(ids, train_ids[:12])  # the training split's first blocks, past the student's subset of 4
    assert not any(torch.equal(row, other) for row in ids for other in held_out)
    cfg.student.calibration_blocks = len(train_ids) + 1
    with pytest.raises(Exception, match=f"student.calibration_blocks={len(train_ids) + 1} but the training split "
                                        f"has {len(train_ids)} blocks"):
        build_model(cfg.student.model, data)


@pytest.mark.slow
def test_the_app_refuses_a_bad_pruning_before_anything_runs_exit_2(tmp_path):
    save_gqa_llama(tmp_path / "teacher")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": f"the {w} sat on a mat ."}) + "\n" for w in WORDS * 2))
    run_dir, home = tmp_path / "run", tmp_path / "home"
    done = subprocess.run(
        [sys.executable, "-m", "entrenar_bench.run", "+experiment=smollm2",
         f"teacher.model.path={tmp_path / 'teacher'}",
         f"data.path={corpus}", "student.keep=0", f"hydra.run.dir={run_dir}"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONWARNINGS": "ignore",
                                                           "ENTRENAR_BENCH_HOME": str(home)})
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip() == "error: student.keep=0: the teacher has 4 layers, so keep 1..4", done.stderr
    assert not (run_dir / "result.json").exists() and not (home / "outputs" / "cache" / "teachers").exists()
