"""The student's own tokenizer for a corpus (``data.student_tokenizer``): ``bpe:<size>``, a byte-level BPE trained with
the ``tokenizers`` library on the training split's text only, or a local tokenizer directory.

- ``bpe:<size>``: GPT-2's byte-level pre-tokenisation and BPE merges up to ``size`` ids, with the teacher's
  end-of-text token (:data:`END`, SmolLM2's and GPT-2's ``<|endoftext|>``, so GOLD matches the two) as its only
  special token. Cached by content: ``<cache>/tokenizers/bpe<size>-<digest>/``, the digest the SHA-256 of the kind,
  the size and the training texts; a file lock makes parallel jobs train it once; written to a temporary directory
  and renamed, so a killed training leaves nothing half-written.
- A directory is refused (one line, before launch) where it holds code (``auto_map`` in a JSON config, a ``.py``
  file) or a pickle (``.pkl``, ``.pickle``, ``.bin``, ``.pt``, ``.pth``, ``.ckpt``, ``.joblib``), has no
  ``tokenizer.json`` (the byte offsets that align the two tokenizations come from a fast tokenizer), or cannot
  encode the corpus's text round trip (``decode(encode(text)) == text`` for every document).

Torch-free: the pre-launch checks import it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from entrenar_bench.data.corpus import first_line

BPE = "bpe:"
END = "<|endoftext|>"
MIN_BPE = 260  # the 256 byte symbols, the end token and a few merges
CODE_SUFFIXES = (".py",)
PICKLE_SUFFIXES = (".pkl", ".pickle", ".bin", ".pt", ".pth", ".ckpt", ".joblib")
TOKENIZERS_DIR = "tokenizers"


def bpe_size(value: str) -> int | None:
    """The size of ``bpe:<size>``; None for any other value (a directory); ValueError for a bad size."""
    if not value.startswith(BPE):
        return None
    size = value[len(BPE):]
    if not size.isdigit() or int(size) < MIN_BPE:
        raise ValueError(f"data.student_tokenizer={value}: the size of a trained BPE must be an integer >= {MIN_BPE} "
                         "(e.g. bpe:8000)")
    return int(size)


def check_directory(value: str) -> Path:
    """A student tokenizer directory holding neither code nor pickles, with a ``tokenizer.json`` the ``tokenizers``
    library loads (ValueError of one line otherwise)."""
    directory = Path(value).expanduser()
    where = f"data.student_tokenizer={value} (bpe:<size> or a local tokenizer directory)"
    if not directory.is_dir():
        raise ValueError(f"{where}: no such directory")
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    code = next((p for p in files if p.suffix in CODE_SUFFIXES), None)
    if code is not None:
        raise ValueError(f"{where} holds code ({code.name}); this tool never runs a tokenizer's own code")
    pickle = next((p for p in files if p.suffix in PICKLE_SUFFIXES), None)
    if pickle is not None:
        raise ValueError(f"{where} holds a pickle ({pickle.name}), which can run code when loaded; give a "
                         "tokenizer.json")
    for path in (p for p in files if p.suffix == ".json"):
        try:
            parsed = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as e:
            raise ValueError(f"{where}: {path.name} is not readable JSON ({first_line(e)})") from None
        if isinstance(parsed, dict) and "auto_map" in parsed:
            raise ValueError(f"{where} needs its own code (auto_map in {path.name}); this tool never runs a "
                             "tokenizer's own code")
    if not (directory / "tokenizer.json").is_file():
        raise ValueError(f"{where} has no tokenizer.json (a fast tokenizer gives the byte offsets that align the "
                         "two tokenizations)")
    backend(directory)
    return directory


def backend(directory: Path):
    """The directory's ``tokenizers.Tokenizer`` (ValueError of one line where it does not load)."""
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(directory / "tokenizer.json"))
    except Exception as e:  # the library's own error says what is wrong
        raise ValueError(f"tokenizer file {directory / 'tokenizer.json'} cannot be loaded ({first_line(e)})") from None


def round_trip_failure(tokenizer, texts: Sequence[str]) -> int | None:
    """The index of the first text that ``tokenizer`` (a ``tokenizers.Tokenizer``) does not give back from its ids,
    else None."""
    encodings = tokenizer.encode_batch(list(texts), add_special_tokens=False)
    decoded = tokenizer.decode_batch([e.ids for e in encodings], skip_special_tokens=False)
    return next((i for i, (a, b) in enumerate(zip(texts, decoded)) if a != b), None)


def check_round_trip(directory: Path, texts: Sequence[str], value: str) -> None:
    """ValueError of one line naming the first document the directory's tokenizer does not encode round trip."""
    failed = round_trip_failure(backend(directory), texts)
    if failed is not None:
        text = texts[failed]
        raise ValueError(f"data.student_tokenizer={value} does not encode the corpus round trip (document "
                         f"{failed + 1}, {text[:40]!r}… decodes to other text); its byte offsets cannot be aligned "
                         "with the teacher's")


def bpe_directory(cache_dir: Path, size: int, texts: Sequence[str]) -> Path:
    """Where the BPE of ``size`` ids trained on ``texts`` is cached (whether or not it is there yet)."""
    digest = hashlib.sha256(f"bpe\0{size}\0{END}\0".encode())
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return Path(cache_dir) / TOKENIZERS_DIR / f"bpe{size}-{digest.hexdigest()[:16]}"


def train_bpe(texts: Sequence[str], size: int, directory: Path) -> None:
    """A byte-level BPE of ``size`` ids trained on ``texts``, saved as a Hugging Face tokenizer in ``directory``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=size, special_tokens=[END], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer)
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token=END, pad_token=END).save_pretrained(str(directory))


def trained_bpe(cache_dir: Path, size: int, texts: Sequence[str]) -> Path:
    """The cached BPE of ``size`` ids for ``texts`` (the training split's), trained first under a file lock if
    missing."""
    from filelock import FileLock

    directory = bpe_directory(cache_dir, size, texts)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{directory}.lock"):
        if not (directory / "tokenizer.json").is_file():
            partial = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
            try:
                train_bpe(texts, size, partial)
                os.replace(partial, directory)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    return directory
