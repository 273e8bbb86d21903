"""The corpus's tokenizer: ``char`` (built from the corpus) or a local Hugging Face tokenizer directory
(never downloaded, never its own code: ``trust_remote_code`` stays off).

``check_tokenizer`` is the cheap half, run before launch without torch or transformers: the directory
exists and holds a tokenizer whose JSON files parse and whose ``tokenizer.json`` the ``tokenizers``
library loads. ``load_tokenizer`` loads it with ``AutoTokenizer`` (in the run).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from entrenar_bench.data.corpus import first_line, read_text_file

CHAR = "char"
JSON_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
              "vocab.json", "chat_template.json")
VOCABULARY_FILES = ("tokenizer.json", "vocab.json", "vocab.txt", "tokenizer.model", "spiece.model",
                    "sentencepiece.bpe.model")


class CharTokenizer:
    """One id per character of the corpus (sorted) from 1. Id 0 is both padding and the end of a document,
    as GPT-2's tokenizer pads with its EOS: the target mask, not the id, tells them apart. No BOS, no
    chat template. Called like a Hugging Face tokenizer on a list of texts."""

    pad_token_id = 0
    eos_token_id = 0
    bos_token_id = None
    chat_template = None
    name_or_path = CHAR

    def __init__(self, texts: Sequence[str]):
        self.index = {c: i + 1 for i, c in enumerate(sorted(set("".join(texts))))}

    def __len__(self) -> int:
        return len(self.index) + 1

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [self.index[c] for c in text]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        chars = {i: c for c, i in self.index.items()}
        return "".join(chars.get(int(i), "") for i in ids)

    def __call__(self, texts: Sequence[str], add_special_tokens: bool = False, verbose: bool = False) -> dict:
        return {"input_ids": [self.encode(t) for t in texts]}


def _json(path: Path) -> object:
    text = read_text_file(path, "tokenizer file")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:
        detail = f"{e.msg}, line {e.lineno}" if isinstance(e, json.JSONDecodeError) else first_line(e)
        raise ValueError(f"tokenizer file {path} is not valid JSON ({detail})") from None


def check_tokenizer(tokenizer: str) -> None:
    """``char``, or a directory holding a tokenizer that parses (ValueError of one line otherwise)."""
    if tokenizer == CHAR:
        return
    directory = Path(tokenizer)
    where = f"tokenizer {directory} (data.tokenizer: 'char' or a local tokenizer directory)"
    if not directory.exists():
        raise ValueError(f"{where} not found")
    if not directory.is_dir():
        raise ValueError(f"{where} is not a directory")
    try:
        names = {p.name for p in directory.iterdir()}
    except OSError as e:
        raise ValueError(f"{where} cannot be read ({e.strerror or e})") from None
    if not names:
        raise ValueError(f"{where} is empty")
    if not names & set(VOCABULARY_FILES):
        raise ValueError(f"{where} has no vocabulary (none of {', '.join(VOCABULARY_FILES)})")
    parsed = {name: _json(directory / name) for name in JSON_FILES if name in names}
    config = parsed.get("tokenizer_config.json", {})
    if not isinstance(config, dict):
        raise ValueError(f"tokenizer file {directory / 'tokenizer_config.json'} is not a JSON object")
    if "auto_map" in config:
        raise ValueError(f"{where} needs its own code (auto_map in tokenizer_config.json); this tool never runs "
                         "a model's or tokenizer's code (trust_remote_code stays off)")
    if "tokenizer.json" in parsed:
        from tokenizers import Tokenizer  # Rust: milliseconds, no torch

        try:
            Tokenizer.from_file(str(directory / "tokenizer.json"))
        except Exception as e:  # the library's own error says what is wrong; keep its first line
            raise ValueError(f"tokenizer file {directory / 'tokenizer.json'} cannot be loaded ({first_line(e)})") \
                from None


def has_chat_template(tokenizer: str) -> bool:
    """Whether a (checked) tokenizer directory carries a chat template (``chat_template.jinja``,
    ``chat_template.json`` or ``chat_template`` in ``tokenizer_config.json``)."""
    if tokenizer == CHAR:
        return False
    directory = Path(tokenizer)
    if (directory / "chat_template.jinja").is_file() or (directory / "chat_template.json").is_file():
        return True
    config = directory / "tokenizer_config.json"
    return config.is_file() and bool(_json(config).get("chat_template"))


def load_tokenizer(tokenizer: str, texts: Sequence[str]):
    """``char`` (built from ``texts``) or the directory's tokenizer; it must have an end-of-sequence token
    (packed documents are separated by it)."""
    if tokenizer == CHAR:
        return CharTokenizer(texts)
    check_tokenizer(tokenizer)
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(tokenizer, local_files_only=True, trust_remote_code=False)
    except Exception as e:  # transformers raises OSError, ValueError, KeyError, ... for a broken directory
        raise ValueError(f"tokenizer {tokenizer} cannot be loaded ({first_line(e)})") from None
    if tok.eos_token_id is None:
        raise ValueError(f"tokenizer {tokenizer} has no end-of-sequence token (eos_token); packing documents "
                         "into blocks separates them with it")
    return tok
