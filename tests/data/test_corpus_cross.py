"""A corpus read through two tokenizers (data.student_tokenizer): the student's BPE trained on the training split
only and cached by content; a tokenizer directory holding code or pickles, or one that does not encode the corpus
round trip, refused in one line; the teacher's rows those of the plain corpus module; aligned positions cover the
same bytes on both sides."""

import json

import pytest
import torch

from entrenar_bench.data import student_tokenizer
from entrenar_bench.data.checks import CORPUS_TARGET, check_corpus_inputs
from entrenar_bench.data.corpus_cross import CrossCorpusDataModule, token_spans
from entrenar_bench.data.student_tokenizer import check_directory, check_round_trip
from entrenar_bench.data.text import CorpusDataModule
from hf_tokenizers import eos_padded_tokenizer, save_tokenizer, write_word_corpus  # noqa: F401  (fixtures)

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_word_corpus(tmp_path_factory.mktemp("corpus"), seed=0)


def _data(corpus, tokenizer, tmp_path, student="bpe:280", **kwargs) -> CrossCorpusDataModule:
    data = CorpusDataModule(path=str(corpus), tokenizer=str(tokenizer), block_size=16, student_tokenizer=student,
                            cache_dir=str(tmp_path / "cache"), batch_size=4, **kwargs)
    data.setup()
    return data


def test_the_bpe_trains_on_the_training_split_only_and_is_cached(corpus, eos_padded_tokenizer, tmp_path,  # noqa: F811
                                                                 monkeypatch):
    seen = []
    train = student_tokenizer.train_bpe
    monkeypatch.setattr(student_tokenizer, "train_bpe", lambda texts, *a: (seen.append(list(texts)), train(texts, *a)))
    data = _data(corpus, eos_padded_tokenizer, tmp_path)
    assert isinstance(data, CrossCorpusDataModule) and len(seen) == 1
    view = data.teacher_view
    training_text = "".join(view.loaded_tokenizer.decode(row.tolist(), skip_special_tokens=True)
                            for row in view.splits["train"].tensors[0])
    assert "".join(seen[0]) == training_text  # the training blocks' text, in order, and nothing else
    held_out = [view.loaded_tokenizer.decode(row.tolist(), skip_special_tokens=True)
                for split in ("val", "test") for row in view.splits[split].tensors[0]]
    assert not any(text and text in training_text for text in held_out if len(text) > 40)
    again = _data(corpus, eos_padded_tokenizer, tmp_path)  # the same corpus and size: read from the cache
    assert len(seen) == 1 and again.student_tokenizer_dir == data.student_tokenizer_dir
    assert data.student_tokenizer_dir.parent == tmp_path / "cache" / "tokenizers"
    other = _data(corpus, eos_padded_tokenizer, tmp_path, "bpe:270")
    assert len(seen) == 2 and other.student_tokenizer_dir != data.student_tokenizer_dir and other.vocab_size == 270


def test_the_teachers_rows_are_the_plain_corpus_modules(corpus, eos_padded_tokenizer, tmp_path):  # noqa: F811
    data = _data(corpus, eos_padded_tokenizer, tmp_path)
    plain = CorpusDataModule(path=str(corpus), tokenizer=str(eos_padded_tokenizer), block_size=16, batch_size=4)
    plain.setup()
    for split in ("train", "val", "test"):
        for ours, theirs in zip(data.teacher_view.splits[split].tensors, plain.splits[split].tensors):
            assert torch.equal(ours, theirs)
        assert torch.equal(data.cross[split][0], plain.splits[split].tensors[0])  # the batches' teacher ids


def test_aligned_positions_predict_the_same_bytes_on_both_sides(corpus, eos_padded_tokenizer, tmp_path):  # noqa: F811
    data = _data(corpus, eos_padded_tokenizer, tmp_path)
    student, teacher = data.loaded_tokenizer, data.teacher_view.loaded_tokenizer
    ids, mask, _, t_ids, first, later, aligned, widths = data.batch_tensors("train", 32)
    checked = 0
    for r in range(len(ids)):
        for j in aligned[r].nonzero()[:, 0].tolist():
            rows = [first[r, j].item()] + [t for t in later[r, j].tolist() if t >= 0]
            assert rows == list(range(rows[0], rows[0] + len(rows)))  # consecutive teacher rows
            teacher_bytes = teacher.decode([t_ids[r, t + 1].item() for t in rows], skip_special_tokens=True)
            student_bytes = student.decode([ids[r, j + 1].item()], skip_special_tokens=True)
            assert teacher_bytes == student_bytes and mask[r, j + 1]
            checked += 1
    assert checked > 100 and 0.2 < data.aligned_fraction <= 1
    assert widths[mask].min() >= 1 and data.bytes_per_target["test"]["student"] > 1


def test_token_spans_cover_the_text_untrimmed_in_bytes(eos_padded_tokenizer):  # noqa: F811
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(eos_padded_tokenizer))
    text = "the café sat  on"
    ids, spans = token_spans(tok, [text])
    assert ids[0] == tok(text, add_special_tokens=False)["input_ids"]
    encoded = text.encode()
    assert spans[0][0][0] == 0 and spans[0][-1][1] == len(encoded)
    assert all(a[1] == b[0] for a, b in zip(spans[0], spans[0][1:]))  # contiguous: every byte in one token


def _directory(tmp_path, name, **files):
    directory = save_tokenizer(tmp_path / name, bos=None, pad=None, chat_template=None)
    for file, content in files.items():
        (directory / file).write_text(content)
    return directory


def test_a_directory_with_code_or_pickles_is_refused(tmp_path):
    check_directory(str(_directory(tmp_path, "plain")))
    config = _directory(tmp_path, "auto_map")
    meta = json.loads((config / "tokenizer_config.json").read_text())
    (config / "tokenizer_config.json").write_text(json.dumps({**meta, "auto_map": {"AutoTokenizer": ["x.Tok", None]}}))
    with pytest.raises(ValueError, match=r"needs its own code \(auto_map in tokenizer_config.json\)"):
        check_directory(str(config))
    with pytest.raises(ValueError, match=r"holds code \(tokenization_mine.py\)"):
        check_directory(str(_directory(tmp_path, "code", **{"tokenization_mine.py": "import os"})))
    with pytest.raises(ValueError, match=r"holds a pickle \(tokenizer.pkl\)"):
        check_directory(str(_directory(tmp_path, "pickle", **{"tokenizer.pkl": "x"})))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"has no tokenizer.json"):
        check_directory(str(tmp_path / "empty"))


def test_a_tokenizer_that_loses_the_text_is_refused(tmp_path):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()  # "The" comes back as "the"
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["the cat sat"] * 10, trainers.BpeTrainer(vocab_size=60, special_tokens=["<unk>", "</s>"]))
    directory = tmp_path / "lower"
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>").save_pretrained(str(directory))
    check_round_trip(directory, ["the cat"], str(directory))
    with pytest.raises(ValueError, match=r"does not encode the corpus round trip \(document 2, 'The cat'"):
        check_round_trip(directory, ["the cat", "The cat"], str(directory))


def test_the_pre_launch_checks_refuse_bad_student_tokenizers(corpus, eos_padded_tokenizer, tmp_path):  # noqa: F811
    cfg = {"_target_": CORPUS_TARGET, "path": str(corpus), "tokenizer": str(eos_padded_tokenizer), "block_size": 16}
    check_corpus_inputs({**cfg, "student_tokenizer": "bpe:8000"})
    with pytest.raises(ValueError, match=r"the teacher's must be a tokenizer directory \(data.tokenizer\), not char"):
        check_corpus_inputs({**cfg, "tokenizer": "char", "student_tokenizer": "bpe:8000"})
    with pytest.raises(ValueError, match=r"bpe:12: the size of a trained BPE must be an integer >= 260"):
        check_corpus_inputs({**cfg, "student_tokenizer": "bpe:12"})
    with pytest.raises(ValueError, match=r"no such directory"):
        check_corpus_inputs({**cfg, "student_tokenizer": str(tmp_path / "missing")})
    with pytest.raises(ValueError, match=r"holds a pickle"):
        check_corpus_inputs({**cfg, "student_tokenizer": str(_directory(tmp_path, "p", **{"vocab.bin": "x"}))})
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "a cat", "response": "sat on the mat " * 4}) + "\n")
    with pytest.raises(ValueError, match=r"reads text documents; corpus .*pairs.jsonl holds prompt/response pairs"):
        check_corpus_inputs({**cfg, "path": str(pairs), "student_tokenizer": "bpe:300"})
