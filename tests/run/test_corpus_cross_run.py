"""A corpus distilled across two tokenizers end to end (tiny sizes): the student reads the text through a BPE trained
on the training split (data.student_tokenizer=bpe:N), the teacher through its own tokenizer; gold and uld train and
record the aligned fraction, the unmatched mass and bits per byte; a student that keeps another vocabulary, and a
student tokenizer directory holding code, are refused before launch in one line."""

import json

import pytest

from entrenar_bench.errors import ConfigError
from entrenar_bench.run.app import run
from entrenar_bench.run.tokenizations import check_tokenizations
from data.hf_tokenizers import eos_padded_tokenizer, save_tokenizer, write_word_corpus  # noqa: F401  (fixtures)

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_word_corpus(tmp_path_factory.mktemp("corpus"), seed=1)


def _overrides(corpus, tokenizer, *extra, student="bpe:280"):
    return ["+experiment=lm", "data=corpus", f"data.path={corpus}", f"data.tokenizer={tokenizer}", "data.block_size=16",
            "data.train_subset=64", f"data.student_tokenizer={student}", "distill.teacher_outputs=online",
            "teacher.train.epochs=1", "train.epochs=1", *extra]


def test_gold_and_uld_distil_a_bpe_student_and_record_the_alignment(compose_cfg, corpus, eos_padded_tokenizer,  # noqa: F811
                                                                    tmp_path):
    records = {loss: run(compose_cfg(*_overrides(corpus, eos_padded_tokenizer), f"distill.logit_loss={loss}"),
                         tmp_path / loss) for loss in ("gold", "uld")}
    for loss, record in records.items():
        m, alignment = record["metrics"], record["alignment"]
        assert record["status"] == "completed" and record["teacher_signal"]["mode"] == "online"
        assert m["loss"] > 0 and 0 < m["bits_per_byte"] < 8 and "teacher_kl" not in m
        assert alignment["student_vocabulary"] == 280 and alignment["teacher_vocabulary"] > 280
        assert 0.2 < alignment["aligned_fraction"] <= 1 and alignment["matched_tokens"] > 50
        assert 0 <= record["unmatched_mass"] < 1 and record["teacher"]["metrics"]["loss"] > 0
        saved = json.loads((tmp_path / loss / "student" / "tokenizer_config.json").read_text())  # its own tokenizer
        assert saved["eos_token"] == "<|endoftext|>"
    assert records["gold"]["metrics"]["loss"] != records["uld"]["metrics"]["loss"]
    baseline = run(compose_cfg(*_overrides(corpus, eos_padded_tokenizer), "distill=none"), tmp_path / "none")
    assert baseline["status"] == "completed" and "unmatched_mass" not in baseline
    assert baseline["alignment"]["aligned_fraction"] == records["gold"]["alignment"]["aligned_fraction"]


def test_a_student_that_keeps_the_teachers_vocabulary_is_refused(compose_cfg):
    with pytest.raises(ConfigError, match=r"^data.student_tokenizer=bpe:8000 gives the student a vocabulary of its "
                                          r"own, but student=from_teacher keeps another .*student=llama_small"):
        check_tokenizations(compose_cfg("+experiment=smollm2", "data.student_tokenizer=bpe:8000",
                                        "distill.logit_loss=gold"))
    check_tokenizations(compose_cfg("+experiment=smollm2_cross", "distill.logit_loss=gold"))


def test_a_student_tokenizer_holding_code_is_refused_before_launch(run_app, corpus, eos_padded_tokenizer,  # noqa: F811
                                                                   tmp_path):
    directory = save_tokenizer(tmp_path / "code", bos=None, pad=None, chat_template=None)
    (directory / "tokenization_mine.py").write_text("import os\n")
    result = run_app(*_overrides(corpus, eos_padded_tokenizer, "distill.logit_loss=gold", student=str(directory)),
                     f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 2 and "holds code (tokenization_mine.py)" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
