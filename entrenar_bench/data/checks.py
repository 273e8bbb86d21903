"""Checks of a corpus data config's inputs before anything launches: the settings, the corpus file,
the tokenizer directory, and whether the corpus can fill one block per split. Each failure is a
``ValueError`` of one line (the caller turns it into a ``ConfigError``: exit 2). Cheap enough for the
command-line process: it reads the corpus once and never imports torch or transformers.

What only the tokenizer can tell (a prompt's exact length, the exact number of blocks) is settled
when the run loads the data; here the number of blocks has an upper bound (``blocks_at_most``), so a
corpus this refuses can never fill the splits, and one it passes still may not.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real
from pathlib import Path

from entrenar_bench.data.corpus import (
    BLANK_LINE, BLOCK_SIZE, PAIR_SEPARATOR, Document, TextDocument, first_line, read_documents,
)
from entrenar_bench.data.schema import DataSchema
from entrenar_bench.data.student_tokenizer import bpe_size, check_directory, check_round_trip
from entrenar_bench.data.splits import TEST_FRACTION, VAL_FRACTION, split_sizes
from entrenar_bench.data.tokenizer import CHAR, check_tokenizer, has_chat_template
from entrenar_bench.errors import ConfigError
from entrenar_bench.rules import check_node

CORPUS_TARGET = "entrenar_bench.data.text.CorpusDataModule"


def blocks_at_most(documents: Sequence[Document], block_size: int, tokenizer: str, chat_template: bool,
                   pair_separator: str = PAIR_SEPARATOR) -> int:
    """An upper bound on the number of packed blocks (``packing.py``). A block closes full (at most
    ``⌊T / L⌋`` of them, ``T`` the tokens at most), before a pair that does not fit (at most one per pair)
    or at the end. Tokens at most: one per character with ``char`` plus the EOS; otherwise one per UTF-8
    byte (byte-level BPE, byte fallback and WordPiece tokenizers never give more) plus BOS, EOS and a
    word-prefix marker, and a pair its separator; a pair, cut to one block, at most ``L`` (exactly ``L`` with
    a chat template, whose rendering only the tokenizer knows)."""
    per_char = tokenizer == CHAR
    extra = 1 if per_char else 3

    def tokens(text: str) -> int:
        return len(text) if per_char else len(text.encode("utf-8"))

    total = pairs = 0
    for document in documents:
        if isinstance(document, TextDocument):
            total += tokens(document.text) + extra
        else:
            pairs += 1
            total += block_size if chat_template else \
                min(block_size, tokens(document.prompt) + tokens(pair_separator) + tokens(document.response) + extra)
    return -(-total // block_size) if not pairs else total // block_size + pairs + 1


def check_student_tokenizer(value, tokenizer: str, documents: Sequence[Document], path: str) -> None:
    """``data.student_tokenizer``: null, ``bpe:<size>``, or a directory that holds neither code nor pickles and
    encodes every document round trip (``student_tokenizer.py``); text documents only."""
    if value is None:
        return
    if not isinstance(value, str) or not value:
        raise ValueError(f"data.student_tokenizer must be bpe:<size> or a local tokenizer directory, got {value!r}")
    if tokenizer == CHAR:
        raise ValueError("data.student_tokenizer aligns two tokenizers by their byte offsets: the teacher's must be a "
                         "tokenizer directory (data.tokenizer), not char")
    if not all(isinstance(d, TextDocument) for d in documents):
        raise ValueError(f"data.student_tokenizer reads text documents; corpus {path} holds prompt/response pairs")
    if bpe_size(value) is None:
        check_round_trip(check_directory(value), [d.text for d in documents], value)


def _is_fraction(value) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and 0 < value < 1


def check_corpus_inputs(data_cfg) -> None:
    """For a data config whose ``_target_`` is the corpus module (any other passes untouched): every input
    it names is usable, or ValueError of one line naming the setting, file or line."""
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(data_cfg, DictConfig):
        try:
            data_cfg = OmegaConf.to_container(data_cfg, resolve=True)
        except OmegaConfBaseException as e:
            raise ValueError(f"data: {first_line(e)}") from None
    if data_cfg.get("_target_") != CORPUS_TARGET:
        return
    path = data_cfg.get("path")
    if path in (None, "", "???"):
        raise ValueError("data.path is not set: give the corpus file (data.path=/data/corpus.txt)")
    try:
        check_node(data_cfg, DataSchema, "data.")  # block_size, chat_template, fractions: the schema's rules
    except ConfigError as e:
        raise ValueError(str(e)) from None
    tokenizer = data_cfg.get("tokenizer", CHAR)
    block_size = data_cfg.get("block_size", BLOCK_SIZE)
    separator = data_cfg.get("document_separator", BLANK_LINE)
    chat_template = data_cfg.get("chat_template", False)
    pair_separator = data_cfg.get("pair_separator", PAIR_SEPARATOR)
    if not isinstance(path, str):
        raise ValueError(f"data.path must be a file path, got {path!r}")
    if not isinstance(tokenizer, str) or not tokenizer:
        raise ValueError(f"data.tokenizer must be 'char' or a local tokenizer directory, got {tokenizer!r}")
    if separator is not None and (not isinstance(separator, str) or "\n" in separator or "\r" in separator):
        raise ValueError("data.document_separator must be one line of text ('' for blank lines, e.g. '%' for "
                         f"fortunes files) or null (the whole file one document), got {separator!r}")
    if not isinstance(pair_separator, str):
        raise ValueError(f"data.pair_separator must be text (' ' by default, '' for none), got {pair_separator!r}")

    documents = read_documents(Path(path), separator)
    check_tokenizer(tokenizer)
    check_student_tokenizer(data_cfg.get("student_tokenizer"), tokenizer, documents, path)
    if chat_template:
        if not has_chat_template(tokenizer):
            raise ValueError(f"data.chat_template=true but tokenizer {tokenizer} has no chat template "
                             "(chat_template.jinja, or chat_template in tokenizer_config.json)")
        if all(isinstance(d, TextDocument) for d in documents):
            raise ValueError(f"data.chat_template=true but corpus {path} has no prompt/response pairs")
    val, test = data_cfg.get("val_fraction", VAL_FRACTION), data_cfg.get("test_fraction", TEST_FRACTION)
    if not (_is_fraction(val) and _is_fraction(test) and val + test < 1):
        return  # the config checks name bad fractions
    most = blocks_at_most(documents, block_size, tokenizer, chat_template, pair_separator)
    if not any(min(split_sizes(n, val, test)) >= 1 for n in range(1, most + 1)):
        raise ValueError(f"corpus {path} is too short for blocks of {block_size} tokens: at most {most} block(s), "
                         f"too few for train/val/test splits of fractions {val}/{test}; add text or lower "
                         "data.block_size")
