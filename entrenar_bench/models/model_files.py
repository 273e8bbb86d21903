"""A local Hugging Face model directory, read as data: its config, its tokenizer, its weights' format.

Only what the project's own checks need, read cheaply (``config.json`` and the tokenizer's files, never
the weights), so that every model a run names is checked before anything launches:
- the directory exists and holds ``config.json`` and safetensors weights: a pickle checkpoint
  (``pytorch_model.bin``) is refused, never unpickled;
- no file asks to run the model's own code (``auto_map`` in its config or tokenizer config): a
  directory is data, and ``trust_remote_code`` is never enabled;
- ``vocabulary_rows``: the token embeddings (``vocab_size``); ``tokenizer_vocabulary``: token -> id of its
  tokenizer (``tokenizer.json``, read with ``tokenizers``; other forms through ``AutoTokenizer``).
"""

from __future__ import annotations

import json
from pathlib import Path

from entrenar_bench.errors import ConfigError
from entrenar_bench.files import read_data

CONFIG = "config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")
PICKLES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
CODE_KEY = "auto_map"


def _json(path: Path, where: str) -> dict:
    try:
        value = json.loads(read_data(path, follow_links=True))
    except (OSError, ValueError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else " ".join(str(e).split())[:120]
        raise ConfigError(f"{where}: unreadable {path.name} ({reason})") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: {path.name} is not a JSON object")
    return value


def refuse_remote_code(directory: Path, where: str) -> None:
    """ConfigError if the config or tokenizer config of ``directory`` maps classes to its own code."""
    for name in (CONFIG, "tokenizer_config.json"):
        path = directory / name
        if path.is_file() and CODE_KEY in _json(path, where):
            raise ConfigError(f"{where}: {path} asks to run the model's own code ({CODE_KEY}); "
                              "entrenar-bench never enables trust_remote_code")


def model_config(directory: Path, where: str) -> dict:
    """``config.json`` of a model directory that can be loaded safely (safetensors weights, no code to run),
    else ConfigError naming ``where`` (e.g. ``teacher.model.path=/models/x``) and the problem."""
    if not directory.is_dir():
        raise ConfigError(f"{where}: no such directory (a model directory written by save_pretrained, "
                          "or a .gguf file)")
    if not (directory / CONFIG).is_file():
        raise ConfigError(f"{where}: no {CONFIG} in it (not a directory written by save_pretrained)")
    config = _json(directory / CONFIG, where)
    refuse_remote_code(directory, where)
    if not any((directory / name).is_file() for name in SAFETENSORS):
        pickled = [name for name in PICKLES if (directory / name).is_file()]
        found = f"only a pickle checkpoint ({pickled[0]}), which is never loaded" if pickled else "no weights"
        raise ConfigError(f"{where}: {found}; save the model with safetensors (save_pretrained's default)")
    return config


def vocabulary_rows(config: dict) -> int | None:
    """Token embeddings of a model config (a multimodal one's text part), or None if it does not say."""
    rows = config.get("vocab_size", (config.get("text_config") or {}).get("vocab_size"))
    return rows if isinstance(rows, int) and not isinstance(rows, bool) else None


def has_tokenizer(directory: Path) -> bool:
    return any((directory / name).is_file() for name in TOKENIZER_FILES)


def tokenizer_vocabulary(directory: Path, where: str) -> dict[str, int]:
    """token -> id of the tokenizer in ``directory``, added tokens included (``len`` = the tokenizer's length)."""
    if not has_tokenizer(directory):
        raise ConfigError(f"{where}: no tokenizer in it (none of {', '.join(TOKENIZER_FILES)})")
    refuse_remote_code(directory, where)
    try:
        if (directory / "tokenizer.json").is_file():
            from tokenizers import Tokenizer

            return Tokenizer.from_file(str(directory / "tokenizer.json")).get_vocab(with_added_tokens=True)
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True).get_vocab()
    except Exception as e:  # a corrupt tokenizer file, whichever library reads it: one line
        raise ConfigError(f"{where}: unreadable tokenizer ({type(e).__name__}: {' '.join(str(e).split())[:160]})") \
            from None
