"""A local Hugging Face model directory, read as data: its config, its tokenizer, its weights' format.

Only what the project's own checks need, read cheaply (``config.json`` and the tokenizer's files, never
the weights), so that every model a run names is checked before anything launches:
- the directory exists and holds ``config.json`` and safetensors weights: a pickle checkpoint
  (``pytorch_model.bin``) is refused, never unpickled; each weights file's header is read (``check_safetensors``:
  a JSON header whose tensors end where the file ends), so a truncated or damaged file is refused by name;
- no file asks to run the model's own code (``auto_map`` in its config or tokenizer config): a
  directory is data, and ``trust_remote_code`` is never enabled;
- ``vocabulary_rows``: the token embeddings (``vocab_size``); ``tokenizer_vocabulary``: token -> id of its
  tokenizer (``tokenizer.json``, read with ``tokenizers``; other forms through ``AutoTokenizer``).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from entrenar_bench.errors import ConfigError
from entrenar_bench.files import read_data

CONFIG = "config.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")
SAFETENSORS = ("model.safetensors", "model.safetensors.index.json")
PICKLES = ("pytorch_model.bin", "pytorch_model.bin.index.json")
CODE_KEY = "auto_map"
MAX_HEADER = 100 << 20  # safetensors' own limit on a header's size


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
    for weights in weight_files(directory, where):
        check_safetensors(weights, where)
    return config


def weight_files(directory: Path, where: str) -> list[Path]:
    """``model.safetensors``, or the shards its index names."""
    index = directory / SAFETENSORS[1]
    if not index.is_file():
        return [directory / SAFETENSORS[0]]
    shards = _json(index, where).get("weight_map")
    if not isinstance(shards, dict) or not shards:
        raise ConfigError(f"{where}: {index.name} has no weight_map")
    return [directory / str(name) for name in sorted(set(shards.values()))]


def check_safetensors(path: Path, where: str) -> None:
    """A safetensors file, judged by its header alone (no tensor read): an 8-byte length, a JSON header of that
    length, and tensors whose data ends exactly where the file does; else ConfigError naming the file."""
    def damaged(reason: str) -> ConfigError:
        return ConfigError(f"{where}: {path.name} is damaged ({reason}); save or copy the model again")

    try:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            f.seek(0)
            head = f.read(8)
            length = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
            if not 0 < length <= min(MAX_HEADER, size - 8):
                raise damaged(f"{size} bytes, no safetensors header")
            header = json.loads(f.read(length))
    except FileNotFoundError:
        raise ConfigError(f"{where}: {path.name} is missing (named by its index)") from None
    except OSError as e:
        raise ConfigError(f"{where}: {path.name} is unreadable ({e.strerror or e})") from None
    except (ValueError, UnicodeDecodeError):
        raise damaged("its header is not JSON") from None
    if not isinstance(header, dict):
        raise damaged("its header is not a JSON object")
    offsets = [entry.get("data_offsets") for name, entry in header.items() if name != "__metadata__"
               and isinstance(entry, dict)]
    if len(offsets) != len(header) - ("__metadata__" in header) or \
            not all(isinstance(o, list) and len(o) == 2 and all(isinstance(v, int) for v in o) for o in offsets):
        raise damaged("a tensor without data offsets")
    end = max((o[1] for o in offsets), default=0)
    if 8 + length + end != size:
        raise damaged(f"{size:,} bytes where its header says {8 + length + end:,}: truncated or padded")


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
