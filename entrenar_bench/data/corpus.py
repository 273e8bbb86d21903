"""The documents of a user's corpus file, read without torch (the pre-launch checks read them too).

A ``.jsonl`` file holds one document per line: an object with a string ``text``, or with strings
``prompt`` and ``response`` (a pair: only the response is learnt). Other keys are ignored, blank
lines skipped. Any other file is plain text: documents separated by separator lines
(``document_separator``): ``""`` (the default) a blank line (empty or whitespace only), any other
string a line that is exactly that string once stripped (``%`` for Debian's fortunes files),
``None`` the whole file as one document. Runs of separators and whitespace-only documents count as
nothing; lines split at ``\\n`` only (``\\r\\n`` is read as ``\\n``).

Every problem is a ``ValueError`` of one line naming the file (and line where there is one). A file
is opened only once ``stat`` says it is a regular file (a symlink to one is fine), so a FIFO or a
device is refused without blocking on it; undecodable bytes (not UTF-8, a NUL byte) are refused, a UTF-16 or
UTF-32 file (by its byte-order mark, or without one by its NUL bytes) by the name of its encoding.
"""

from __future__ import annotations

import codecs
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

JSON_LINES_SUFFIXES = (".jsonl", ".ndjson")
BLANK_LINE = ""  # the default document separator
PAIR_SEPARATOR = " "  # between a prompt and its response where neither has whitespace at the join
BLOCK_SIZE = 128  # tokens per block by default

_KINDS = {stat.S_ISDIR: "a directory", stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket",
          stat.S_ISCHR: "a character device", stat.S_ISBLK: "a block device"}
_WIDE_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),  # UTF-32LE's starts as UTF-16LE's
              (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16"))
_JSON_TYPES = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array",
               dict: "an object", type(None): "null"}


@dataclass(frozen=True)
class TextDocument:
    """Text whose every token is learnt; ``line``: where it starts in its file."""

    text: str
    line: int


@dataclass(frozen=True)
class PromptResponse:
    """A pair: the prompt's tokens are context, the response's the targets."""

    prompt: str
    response: str
    line: int


Document = TextDocument | PromptResponse


def first_line(error: BaseException) -> str:
    """An exception's message cut to its first line (its type's name when it has none)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _regular_file_stat(path: Path, what: str) -> os.stat_result:
    """``stat`` through symlinks; anything but an existing regular file: ValueError."""
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise ValueError(f"{what} {path} is a symlink to a missing file") from None
        raise ValueError(f"{what} {path} not found") from None
    except OSError as e:  # a symlink loop, a parent that cannot be searched, a name too long
        raise ValueError(f"{what} {path} cannot be read ({e.strerror or e})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS.items() if test(info.st_mode)), "not a plain file")
        raise ValueError(f"{what} {path} is not a regular file ({kind})")
    return info


def wide_encoding(data: bytes) -> str | None:
    """``UTF-16`` or ``UTF-32`` where ``data`` starts with its byte-order mark; without one, ``UTF-16LE`` (and the
    like) where it decodes so and its NUL bytes fall where that encoding puts the high bytes of ASCII characters
    (as ``iconv -f`` names them)."""
    for bom, name in _WIDE_BOMS:
        if data.startswith(bom):
            return name
    for name, width, zeros in (("UTF-32LE", 4, (1, 2, 3)), ("UTF-32BE", 4, (0, 1, 2)),
                               ("UTF-16LE", 2, (1,)), ("UTF-16BE", 2, (0,))):
        units = [data[i:i + width] for i in range(0, len(data) - len(data) % width, width)]
        ascii_units = sum(all(unit[z] == 0 for z in zeros) and any(unit) for unit in units)
        if len(data) % width == 0 and units and ascii_units >= len(units) / 2:
            try:
                data.decode(name.lower())
                return name
            except UnicodeDecodeError:
                continue
    return None


def read_text_file(path: Path, what: str = "corpus") -> str:
    """The file's text, decoded as UTF-8 (a leading byte-order mark dropped); ``what`` names it in errors."""
    if _regular_file_stat(path, what).st_size == 0:
        raise ValueError(f"{what} {path} is empty")
    try:
        # O_NONBLOCK: should the path have become a FIFO since the stat, opening it does not block
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise ValueError(f"{what} {path} is not a regular file")
            data = file.read()
    except OSError as e:
        raise ValueError(f"{what} {path} cannot be read ({e.strerror or e})") from None
    encoding = wide_encoding(data) if b"\0" in data else None
    if encoding:
        raise ValueError(f"{what} {path} is {encoding} text, not UTF-8; save it as UTF-8 "
                         f"(iconv -f {encoding} -t UTF-8)")
    if b"\0" in data:
        line = data.count(b"\n", 0, data.index(b"\0")) + 1
        raise ValueError(f"{path}:{line}: a NUL byte: binary data, not a text {what}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x}); save the {what} as UTF-8") \
            from None


def _lines(text: str) -> list[str]:
    return [line.removesuffix("\r") for line in text.split("\n")]


def split_documents(text: str, separator: str | None = BLANK_LINE) -> list[TextDocument]:
    """Plain text's documents: the lines between separator lines, outer blank lines trimmed."""
    if separator is None:
        return [TextDocument(text, 1)] if text.strip() else []
    separator = separator.strip()
    documents: list[TextDocument] = []
    lines: list[str] = []
    start = 1

    def flush() -> None:
        while lines and not lines[-1].strip():
            lines.pop()
        if lines:
            documents.append(TextDocument("\n".join(lines), start))
        lines.clear()

    for number, line in enumerate(_lines(text), 1):
        if line.strip() == separator:
            flush()
        elif lines or line.strip():  # leading blank lines of a document are dropped
            if not lines:
                start = number
            lines.append(line)
    flush()
    return documents


def _field(record: dict, key: str, where: str) -> str:
    if key not in record:
        raise ValueError(f"{where}: missing {key!r} (a line is an object with 'text', or 'prompt' and 'response')")
    value = record[key]
    if not isinstance(value, str):
        raise ValueError(f"{where}: {key!r} must be a string, got {_JSON_TYPES[type(value)]}")
    return value


def parse_json_line(line: str, path: Path, number: int) -> Document:
    """Line ``number`` of a JSON lines corpus."""
    where = f"{path}:{number}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: not JSON ({e.msg}, column {e.colno})") from None
    except (ValueError, RecursionError) as e:  # an integer of thousands of digits, arrays nested too deep
        raise ValueError(f"{where}: not JSON this tool reads ({first_line(e)})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{where}: expected a JSON object with 'text', or 'prompt' and 'response', "
                         f"got {_JSON_TYPES[type(record)]}")
    if "text" in record:
        if "prompt" in record or "response" in record:
            raise ValueError(f"{where}: has both 'text' and 'prompt'/'response'; give one or the other")
        text = _field(record, "text", where)
        if not text.strip():
            raise ValueError(f"{where}: 'text' is empty")
        return TextDocument(text, number)
    prompt, response = _field(record, "prompt", where), _field(record, "response", where)
    if not response.strip():
        raise ValueError(f"{where}: 'response' is empty (nothing to learn)")
    return PromptResponse(prompt, response, number)


def join_pair(prompt: str, response: str, separator: str = PAIR_SEPARATOR) -> str:
    """The prompt as the context of its response: with ``separator`` unless either has whitespace at the join."""
    if not prompt or prompt[-1].isspace() or response[:1].isspace():
        return prompt
    return prompt + separator


def document_texts(documents: list[Document], pair_separator: str = PAIR_SEPARATOR) -> list[str]:
    """Every text of the documents: a text's own, a pair's prompt and response joined (:func:`join_pair`)."""
    return [d.text if isinstance(d, TextDocument) else join_pair(d.prompt, d.response, pair_separator) + d.response
            for d in documents]


def read_documents(path: Path, separator: str | None = BLANK_LINE) -> list[Document]:
    """The corpus's documents (JSON lines by suffix, else plain text); none at all: ValueError."""
    text = read_text_file(path)
    if path.suffix.lower() in JSON_LINES_SUFFIXES:
        documents = [parse_json_line(line, path, number) for number, line in enumerate(_lines(text), 1)
                     if line.strip()]
    else:
        documents = split_documents(text, separator)
    if not documents:
        what = "JSON lines" if path.suffix.lower() in JSON_LINES_SUFFIXES else "text between separator lines"
        raise ValueError(f"corpus {path} has no documents (no {what})")
    return documents
