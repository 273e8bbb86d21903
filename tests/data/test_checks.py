"""The pre-launch checks of a corpus config: every bad corpus, tokenizer or setting is one line naming it,
found without torch or transformers; what they pass loads, and a corpus they call too short never would."""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrenar_bench.data.checks import CORPUS_TARGET, blocks_at_most, check_corpus_inputs
from entrenar_bench.data.corpus import read_documents
from entrenar_bench.data.text import CorpusDataModule
from hf_tokenizers import eos_padded_tokenizer, hf_tokenizer  # noqa: F401  (fixtures)

TEXT = "the cat sat on the mat\n\nit ran in the park\n\nwhere did the dog run\n\n" * 8


def _cfg(corpus_path, **settings):
    return {"_target_": CORPUS_TARGET, "path": str(corpus_path), "tokenizer": "char", "block_size": 16,
            "document_separator": "", "chat_template": False, "val_fraction": 0.1, "test_fraction": 0.1, **settings}


def _refused(cfg, match: str) -> str:
    signal.alarm(20)  # a FIFO opened for reading would block: fail rather than hang
    try:
        with pytest.raises(ValueError, match=match) as info:
            check_corpus_inputs(cfg)
    finally:
        signal.alarm(0)
    assert "\n" not in str(info.value)
    return str(info.value)


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(TEXT)
    return path


@pytest.fixture
def pairs(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": "what did the cat do", "response": "it sat"})
                              for _ in range(20)))
    return path


def test_good_inputs_pass_and_other_data_is_not_looked_at(corpus, pairs, hf_tokenizer):
    check_corpus_inputs(_cfg(corpus))
    check_corpus_inputs(_cfg(corpus, tokenizer=str(hf_tokenizer)))
    check_corpus_inputs(_cfg(pairs, tokenizer=str(hf_tokenizer), chat_template=True))
    check_corpus_inputs({"_target_": "entrenar_bench.data.markov.MarkovDataModule", "path": "/nonexistent"})


def test_the_composed_corpus_config(compose_cfg, corpus):
    """As validate_config checks it: references resolved first (data.tokenizer=teacher: the char tokenizer of a
    config-built teacher)."""
    from entrenar_bench.models.references import with_local_files

    def composed(*overrides):
        return with_local_files(compose_cfg("+experiment=lm", "data=corpus", *overrides)).data

    check_corpus_inputs(composed(f"data.path={corpus}", "data.block_size=16"))
    _refused(compose_cfg("+experiment=lm", "data=corpus").data, "data.path is not set")
    fortunes = corpus.with_name("fortunes")
    fortunes.write_text("%\n".join(f"fortune number {i}\n\nwith a blank line\n" for i in range(30)))
    cfg = composed(f"data.path={fortunes}", "data.document_separator=%", "data.block_size=16")
    check_corpus_inputs(cfg)
    assert len(read_documents(fortunes, cfg.document_separator)) == 30


@pytest.mark.parametrize("name, content, match", [
    ("absent.txt", None, r"corpus .*absent.txt not found"),
    ("empty.txt", b"", r"empty.txt is empty"),
    ("latin1.txt", "ok\ncaf\xe9\n".encode("latin-1"), r"latin1.txt:2: not UTF-8 text"),
    ("model.bin", b"PK\x03\x04\x00\x00binary", r"model.bin:1: a NUL byte"),
    ("blank.txt", b"\n\n  \n", r"has no documents"),
    ("broken.jsonl", b'{"text": "ok"}\n{"text": "cut', r"broken.jsonl:2: not JSON"),
    ("number.jsonl", b'{"prompt": "Q", "response": 42}\n',
     r"number.jsonl:1: 'response' must be a string, got a number"),
    ("list.jsonl", b'["text"]\n', r"list.jsonl:1: expected a JSON object"),
    ("keys.jsonl", b'{"question": "Q", "answer": "A"}\n', r"keys.jsonl:1: missing 'prompt'"),
])
def test_a_bad_corpus_file_is_one_line_naming_it(tmp_path, name, content, match):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    _refused(_cfg(tmp_path / name), match)


def test_what_is_not_a_regular_file(tmp_path, corpus):
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "link").symlink_to(corpus)
    _refused(_cfg(tmp_path / "fifo"), r"fifo is not a regular file \(a FIFO\)")
    _refused(_cfg(tmp_path), r"is not a regular file \(a directory\)")
    _refused(_cfg(tmp_path / "dangling"), "is a symlink to a missing file")
    check_corpus_inputs(_cfg(tmp_path / "link"))


@pytest.mark.parametrize("settings, match", [
    ({"block_size": 1}, "data.block_size must be >= 2, got 1"),
    ({"block_size": "16"}, "data.block_size must be an integer, got '16'"),
    ({"block_size": True}, "data.block_size must be an integer"),
    ({"chat_template": "yes"}, "data.chat_template must be true or false"),
    ({"document_separator": "a\nb"}, "data.document_separator must be one line"),
    ({"document_separator": 3}, "data.document_separator must be one line"),
    ({"tokenizer": ""}, "data.tokenizer must be 'char' or a local tokenizer directory"),
    ({"path": None}, "data.path is not set"),
    ({"path": 7}, "data.path must be a file path"),
])
def test_bad_settings(corpus, settings, match):
    _refused(_cfg(corpus, **settings), match)


def _tokenizer_copy(tmp_path, source, name="tok"):
    target = tmp_path / name
    shutil.copytree(source, target)
    return target


def test_a_bad_tokenizer_directory(tmp_path, corpus, hf_tokenizer):
    _refused(_cfg(corpus, tokenizer=str(tmp_path / "none")), r"tokenizer .*none .* not found")
    _refused(_cfg(corpus, tokenizer=str(corpus)), r"is not a directory")
    (tmp_path / "empty").mkdir()
    _refused(_cfg(corpus, tokenizer=str(tmp_path / "empty")), r"empty .* is empty")
    config_only = _tokenizer_copy(tmp_path, hf_tokenizer, "config_only")
    (config_only / "tokenizer.json").unlink()
    _refused(_cfg(corpus, tokenizer=str(config_only)), r"has no vocabulary \(none of tokenizer.json")
    cases = {"tokenizer.json": (b'{"model": {"type": "BPE", ', r"tokenizer.json is not valid JSON"),
             "tokenizer_config.json": (b"[1, 2]", r"tokenizer_config.json is not a JSON object")}
    for name, (content, match) in cases.items():
        broken = _tokenizer_copy(tmp_path, hf_tokenizer, name)
        (broken / name).write_bytes(content)
        _refused(_cfg(corpus, tokenizer=str(broken)), match)
    not_a_tokenizer = _tokenizer_copy(tmp_path, hf_tokenizer, "not_a_tokenizer")
    (not_a_tokenizer / "tokenizer.json").write_text('{"model": {"type": "Nonsense"}}')
    _refused(_cfg(corpus, tokenizer=str(not_a_tokenizer)), r"tokenizer.json cannot be loaded \(")
    binary = _tokenizer_copy(tmp_path, hf_tokenizer, "binary")
    (binary / "tokenizer.json").write_bytes(b"\x00\x01\x02")
    _refused(_cfg(corpus, tokenizer=str(binary)), r"tokenizer.json:1: a NUL byte")
    remote = _tokenizer_copy(tmp_path, hf_tokenizer, "remote")
    config = json.loads((remote / "tokenizer_config.json").read_text())
    config["auto_map"] = {"AutoTokenizer": ["x.Tok", None]}
    (remote / "tokenizer_config.json").write_text(json.dumps(config))
    _refused(_cfg(corpus, tokenizer=str(remote)), r"needs its own code \(auto_map.*trust_remote_code stays off")


def test_a_chat_template_needs_a_tokenizer_with_one_and_pairs(corpus, pairs, hf_tokenizer, eos_padded_tokenizer):
    _refused(_cfg(pairs, chat_template=True), "tokenizer char has no chat template")
    _refused(_cfg(pairs, tokenizer=str(eos_padded_tokenizer), chat_template=True), "has no chat template")
    _refused(_cfg(corpus, tokenizer=str(hf_tokenizer), chat_template=True), "has no prompt/response pairs")


def test_a_corpus_shorter_than_the_blocks_the_splits_need(tmp_path, hf_tokenizer):
    (tmp_path / "short.txt").write_text("hello world")
    message = _refused(_cfg(tmp_path / "short.txt", block_size=128), r"short.txt is too short for blocks of 128")
    assert "at most 1 block(s)" in message
    _refused(_cfg(tmp_path / "short.txt", tokenizer=str(hf_tokenizer), block_size=128), "too short")
    check_corpus_inputs(_cfg(tmp_path / "short.txt", block_size=2, val_fraction=0.25, test_fraction=0.25))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(documents=st.lists(st.one_of(st.text("abc ", min_size=1, max_size=30).filter(str.strip),
                                    st.tuples(st.text("ab", max_size=12), st.text("xy", min_size=1, max_size=12))),
                          min_size=1, max_size=10),
       block_size=st.integers(2, 24), hf=st.booleans())
def test_a_corpus_the_check_calls_too_short_never_loads(tmp_path, hf_tokenizer, documents, block_size, hf):
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join(json.dumps({"text": d} if isinstance(d, str) else {"prompt": d[0], "response": d[1]})
                              for d in documents))
    tokenizer = str(hf_tokenizer) if hf else "char"
    cfg = _cfg(path, tokenizer=tokenizer, block_size=block_size, val_fraction=0.2, test_fraction=0.2)
    dm = CorpusDataModule(str(path), tokenizer, block_size, val_fraction=0.2, test_fraction=0.2)
    ids, _ = dm.load_tokens()
    assert len(ids) <= blocks_at_most(read_documents(path), block_size, tokenizer, False)  # a true upper bound
    try:
        check_corpus_inputs(cfg)
    except ValueError as e:
        assert "too short" in str(e)
        with pytest.raises(ValueError, match="too few for train/val/test splits"):
            dm.setup()


def test_the_checks_import_neither_torch_nor_transformers(pairs, hf_tokenizer):
    cfg = _cfg(pairs, tokenizer=str(hf_tokenizer), chat_template=True)
    code = ("import sys, json; from entrenar_bench.data.checks import check_corpus_inputs; "
            f"check_corpus_inputs(json.loads({json.dumps(json.dumps(cfg))})); "
            "print(sorted(m for m in ('torch', 'transformers', 'lightning', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
