"""Reading a corpus file into documents: blank-line or separator-line plain text, JSON lines, and every bad
file or line refused with one line naming it (fuzzed with Hypothesis: documents or one line, never a traceback)."""

import json
import os
import signal
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrenar_bench.data.corpus import PromptResponse, TextDocument, read_documents, split_documents


def _one_line_error(call, match: str) -> str:
    with pytest.raises(ValueError, match=match) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    return message


def test_blank_lines_separate_plain_text_documents(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"\n\nfirst line\r\nof one\n\n  \nsecond\n\n\n\n  indented third\n   \n")
    assert read_documents(path) == [TextDocument("first line\nof one", 3), TextDocument("second", 7),
                                    TextDocument("  indented third", 11)]


def test_a_separator_line_such_as_fortunes_percent(tmp_path):
    path = tmp_path / "fortunes"
    path.write_text("Be yourself.\n%\nTwo lines\n\nwith a blank one inside.\n\t-- someone\n%\n%\n Last one %\n%\n")
    assert [d.text for d in read_documents(path, "%")] == [
        "Be yourself.", "Two lines\n\nwith a blank one inside.\n\t-- someone", " Last one %"]
    assert [d.text for d in read_documents(path, " % ")] == [d.text for d in read_documents(path, "%")]
    assert [d.text for d in read_documents(path, None)] == [path.read_text()]   # null: the whole file


def test_json_lines_are_one_document_each(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [{"text": "a whole document\nwith a newline"}, {"prompt": "Q?", "response": "A.", "id": 7},
             {"text": "a line separator \u2028 inside a string"}]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in lines[:2]) + "\n\n" + json.dumps(
        lines[2], ensure_ascii=False) + "\n")
    assert read_documents(path) == [TextDocument(lines[0]["text"], 1), PromptResponse("Q?", "A.", 2),
                                    TextDocument(lines[2]["text"], 4)]
    assert split_documents("only\n\n \n") == [TextDocument("only", 1)]


@pytest.mark.parametrize("line, match", [
    ("{not json", r"c.jsonl:2: not JSON \(Expecting property name"),
    ('["a list"]', r"c.jsonl:2: expected a JSON object .*got an array"),
    ("42", r"c.jsonl:2: expected a JSON object .*got a number"),
    ('{"prompt": "Q"}', r"c.jsonl:2: missing 'response'"),
    ('{"response": "A"}', r"c.jsonl:2: missing 'prompt'"),
    ('{"prompt": "Q", "response": 3}', r"c.jsonl:2: 'response' must be a string, got a number"),
    ('{"prompt": ["Q"], "response": "A"}', r"c.jsonl:2: 'prompt' must be a string, got an array"),
    ('{"text": null}', r"c.jsonl:2: 'text' must be a string, got null"),
    ('{"text": "  "}', r"c.jsonl:2: 'text' is empty"),
    ('{"prompt": "Q", "response": ""}', r"c.jsonl:2: 'response' is empty"),
    ('{"text": "t", "prompt": "Q", "response": "A"}', r"c.jsonl:2: has both 'text' and 'prompt'"),
    ('{"metadata": 1}', r"c.jsonl:2: missing 'prompt'"),
    ("[" * 100000 + "]" * 100000, r"c.jsonl:2: not JSON this tool reads"),
    ('{"text": ' + "9" * 5000 + "}", r"c.jsonl:2: not JSON this tool reads"),
])
def test_a_bad_json_line_is_one_line_naming_it(tmp_path, line, match):
    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "fine"}\n' + line + "\n")
    _one_line_error(lambda: read_documents(path), match)


def test_bad_files_are_refused_without_opening_what_is_not_a_regular_file(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("some text\n")
    (tmp_path / "link.txt").symlink_to(good)
    assert read_documents(tmp_path / "link.txt") == [TextDocument("some text", 1)]   # a symlink to a file is fine
    (tmp_path / "dangling").symlink_to(tmp_path / "gone.txt")
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "latin1.txt").write_bytes("first\ncafé\n".encode("latin-1"))
    (tmp_path / "binary.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "blank.txt").write_text("\n \n\t\n")
    (tmp_path / "only.jsonl").write_text("\n\n")
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    cases = {"absent.txt": r"corpus .*absent.txt not found", "dangling": "is a symlink to a missing file",
             ".": r"is not a regular file \(a directory\)", "pipe": r"is not a regular file \(a FIFO\)",
             "loop": "cannot be read", "empty.txt": "empty.txt is empty",
             "latin1.txt": r"latin1.txt:2: not UTF-8 text \(byte 0xe9\)", "binary.bin": r"binary.bin:3: a NUL byte",
             "blank.txt": "has no documents", "only.jsonl": r"has no documents \(no JSON lines\)"}
    signal.alarm(10)  # opening the FIFO for reading would block: fail rather than hang
    try:
        for name, match in cases.items():
            _one_line_error(lambda name=name: read_documents(tmp_path / name), match)
    finally:
        signal.alarm(0)
    assert read_documents(good) == [TextDocument("some text", 1)]                # nothing was damaged


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_unreadable_file(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("text")
    path.chmod(0)
    _one_line_error(lambda: read_documents(path), r"secret.txt cannot be read \(Permission denied\)")


def test_a_utf8_byte_order_mark_is_not_text(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes("\ufeffhello\n".encode())
    assert read_documents(path) == [TextDocument("hello", 1)]


@pytest.mark.parametrize("encoding, named", [("utf-16", "UTF-16"), ("utf-16-le", "UTF-16LE"), ("utf-16-be", "UTF-16BE"),
                                             ("utf-32", "UTF-32"), ("utf-32-be", "UTF-32BE")])
def test_a_utf16_or_utf32_corpus_is_named_as_such_not_binary(tmp_path, encoding, named):
    path = tmp_path / "wide.jsonl"
    path.write_bytes('{"text": "Grüße aus Köln"}\n{"prompt": "2+2?", "response": "4"}\n'.encode(encoding))
    _one_line_error(lambda: read_documents(path), rf"^corpus {path} is {named} text, not UTF-8; save it as UTF-8 "
                                                  rf"\(iconv -f {named} -t UTF-8\)$")
    path.write_bytes(b"\x00\x01\x02\x03binary\x00data")                   # NUL bytes that are no wide text
    _one_line_error(lambda: read_documents(path), "a NUL byte: binary data")


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda children: st.lists(children, max_size=3)
                           | st.dictionaries(st.sampled_from(["text", "prompt", "response", "x"]) | st.text(max_size=3),
                                             children, max_size=4), max_leaves=8)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200) | st.text(string.printable + "%é\u2028\x00", max_size=200).map(str.encode),
       suffix=st.sampled_from([".txt", ".jsonl"]), separator=st.sampled_from(["", "%", None]))
def test_fuzzed_files_give_documents_or_one_line(tmp_path, raw, suffix, separator):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(raw)
    try:
        documents = read_documents(path, separator)
    except ValueError as e:
        assert "\n" not in str(e) and str(e)
        return
    assert documents and all(isinstance(d, (TextDocument, PromptResponse)) for d in documents)
    assert all(d.text.strip() for d in documents if isinstance(d, TextDocument))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(JSON_VALUES, min_size=1, max_size=4))
def test_fuzzed_json_lines_give_documents_or_one_line(tmp_path, records):
    path = tmp_path / "fuzz.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records))
    try:
        documents = read_documents(path)
    except ValueError as e:
        assert "\n" not in str(e) and str(path) in str(e)
        return
    assert len(documents) == len(records)
    for document, record in zip(documents, records):
        assert document.__dict__ == {**{k: record[k] for k in ("text", "prompt", "response") if k in record},
                                     "line": document.line}
