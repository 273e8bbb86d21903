"""A real corpus: Debian's fortunes file (short documents between ``%`` lines), read, checked and packed
with the character tokenizer and a byte-level BPE. Skipped, saying why, where the package is not installed."""

import os
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from entrenar_bench.data.checks import CORPUS_TARGET, check_corpus_inputs
from entrenar_bench.data.corpus import read_documents
from entrenar_bench.data.text import CorpusDataModule
from hf_tokenizers import hf_tokenizer  # noqa: F401  (fixtures)

FORTUNES = Path(os.environ.get("ENTRENAR_BENCH_FORTUNES", "/usr/share/games/fortunes/fortunes"))
pytestmark = pytest.mark.skipif(not FORTUNES.is_file(), reason=(
    f"no fortunes file at {FORTUNES}: install Debian's fortunes-min (apt-get install fortunes-min) or point "
    "ENTRENAR_BENCH_FORTUNES at one"))


@pytest.mark.parametrize("tokenizer", ["char", "bpe"])
def test_fortunes_are_documents_packed_with_an_eos_each(hf_tokenizer, tokenizer):
    tokenizer = str(hf_tokenizer) if tokenizer == "bpe" else tokenizer
    documents = read_documents(FORTUNES, "%")
    raw = FORTUNES.read_text(encoding="utf-8")
    assert len(documents) == sum(1 for part in raw.split("\n%\n") if part.strip("%\n ").strip())
    check_corpus_inputs({"_target_": CORPUS_TARGET, "path": str(FORTUNES), "tokenizer": tokenizer, "block_size": 64,
                         "document_separator": "%"})
    dm = CorpusDataModule(str(FORTUNES), tokenizer, block_size=64, document_separator="%")
    ids, mask = dm.load_tokens()
    eos = 0 if tokenizer == "char" else AutoTokenizer.from_pretrained(tokenizer).eos_token_id
    learnt_eos = int((mask & (ids == eos)).sum())
    assert len(documents) - len(ids) <= learnt_eos <= len(documents)        # one per document (but at a block start)
    assert mask.mean() > 0.95                                               # packed: almost no padding
