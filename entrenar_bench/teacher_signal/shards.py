"""The teacher store's on-disk format: one directory per split and form, ``<directory>/<split>-<form>/``.

``manifest.json`` holds the layout (form, rows, row shape, vocabulary, dtype, rows per shard) and per shard each
file's shape, dtype, size and SHA-256; it is complete when it lists every shard. ``shard-00000.<array>.npy`` files
hold ``logits`` (exact), or ``ids``, ``log_probs``, ``tail`` (top-k). Each file is written atomically, then the
manifest, which is the commit point: a killed build resumes after the last shard the manifest lists.

A shard is memory-mapped for one read only. Every open checks the file's size against the manifest (a stat); its
header (shape, dtype: ``np.load(mmap_mode="r", allow_pickle=False)``) and its SHA-256 are checked at its first
open in each process, again whenever the file changes (another inode, size or modification time). Hashing at
every open would read the whole store per job (minutes at hundreds of GB) before the first step; once per process
is one sequential pass over what the process reads anyway. A damaged file (truncated, the wrong shape or dtype,
not a .npy — a pickle is refused, never unpickled —, a different digest) raises :class:`FileDamage`; it is never
read as data.
"""

from __future__ import annotations

import hashlib
import json
import math
import mmap
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from entrenar_bench.errors import EntrenarError
from entrenar_bench.files import read_data, sha256_file, write_atomic, write_json_atomic

MANIFEST = "manifest.json"
LOCK = ".lock"
FORMAT = "entrenar-bench teacher store"
VERSION = 1

STORAGE = {"float32": "<f4", "float64": "<f8", "float16": "<f2", "bfloat16": "<u2"}  # logits dtype -> .npy dtype
TOP_K_ARRAYS = {"ids": ("<i4", True), "log_probs": ("<f2", True), "tail": ("<f4", False)}  # dtype, has k axis
TARGETS = "targets"  # a top-k store's float32 log-prob of the token read next at each position, where kept
_CHECKED: dict[tuple, tuple[int, bool]] = {}  # file version -> (data offset, hashed) of files this process checked


class StoreMissing(EntrenarError):
    """No complete store of that split and form: build it first."""


class DamagedStore(EntrenarError):
    """A shard found damaged while reading (one line naming it); the next build rebuilds it."""


class FileDamage(Exception):
    """Why one file is not the one the manifest describes (the caller names the file in its one line)."""


@dataclass(frozen=True)
class Layout:
    """What a store holds: ``rows`` rows of ``row_shape`` positions over ``vocab_size`` tokens, exact
    (``top_k`` 0) logits of ``logits_dtype`` or the top-k form, ``shard_rows`` rows per shard; ``targets``: a top-k
    store also keeps, per position, the log-prob at T = 1 of the token read next (a causal LM's: the chain rule of a
    merged cross-tokenizer group needs it where that token is outside the top k; a manifest without the key has
    none)."""

    top_k: int
    rows: int
    row_shape: tuple[int, ...]
    vocab_size: int
    logits_dtype: str
    shard_rows: int
    targets: bool = False

    @classmethod
    def from_json(cls, value: dict) -> Layout:
        layout = cls(int(value["top_k"]), int(value["rows"]), tuple(int(n) for n in value["row_shape"]),
                     int(value["vocab_size"]), str(value["logits_dtype"]), int(value["shard_rows"]),
                     bool(value.get("targets", False)))
        if min(layout.rows, layout.vocab_size, layout.shard_rows) < 1 or layout.top_k < 0 or \
                layout.logits_dtype not in STORAGE:
            raise ValueError("a layout out of range")
        return layout

    @property
    def k(self) -> int:
        return min(self.top_k, self.vocab_size)

    @property
    def shard_count(self) -> int:
        return math.ceil(self.rows / self.shard_rows)

    def bounds(self, shard: int) -> tuple[int, int]:
        return shard * self.shard_rows, min((shard + 1) * self.shard_rows, self.rows)

    def arrays(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """Each stored array's .npy dtype and shape after the row axis."""
        if not self.top_k:
            return {"logits": (STORAGE[self.logits_dtype], (*self.row_shape, self.vocab_size))}
        arrays = {name: (dtype, (*self.row_shape, self.k) if has_k else self.row_shape)
                  for name, (dtype, has_k) in TOP_K_ARRAYS.items()}
        return {**arrays, TARGETS: ("<f4", self.row_shape)} if self.targets else arrays

    def expected(self, shard: int) -> dict[str, dict[str, Any]]:
        """The file name, shape and dtype of each of ``shard``'s files."""
        start, stop = self.bounds(shard)
        return {name: {"file": f"shard-{shard:05d}.{name}.npy", "shape": [stop - start, *trailing], "dtype": dtype}
                for name, (dtype, trailing) in self.arrays().items()}


def read_manifest(path: Path) -> dict | None:
    """The manifest of the store at ``path``, None if there is none; :class:`FileDamage` if it is not one
    (not JSON, another format, a layout out of range, a shard entry that does not match the layout)."""
    try:
        manifest = json.loads(read_data(path / MANIFEST))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise FileDamage(f"not a JSON manifest: {' '.join(str(e).split())[:80]}") from None
    try:
        if manifest["format"] != FORMAT or manifest["version"] != VERSION:
            raise ValueError("another format")
        layout = Layout.from_json(manifest["layout"])
        for key, entry in manifest["shards"].items():
            for name, expected in layout.expected(int(key)).items():
                found = entry["files"][name]
                if {k: found[k] for k in expected} != expected or not isinstance(found["bytes"], int) or \
                        len(str(found["sha256"])) != 64 or not 0 <= int(key) < layout.shard_count:
                    raise ValueError(f"shard {key}'s {name} does not match the layout")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise FileDamage(f"not a teacher-store manifest ({e})") from None
    return manifest


def map_checked(path: Path, entry: dict, digest: bool) -> np.ndarray:
    """A read-only memory map of the .npy file ``path`` once it matches its manifest ``entry``: its size at
    every call; its header (shape, dtype) and, with ``digest``, its SHA-256 once per process and version of
    the file (device, inode, size, modification time); :class:`FileDamage` otherwise."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise FileDamage("missing") from None
    if not stat.S_ISREG(info.st_mode):
        raise FileDamage("not a regular file")
    if info.st_size != entry["bytes"]:
        raise FileDamage(f"{info.st_size} bytes, the manifest says {entry['bytes']}")
    version = (str(path), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, entry["sha256"])
    offset, hashed = _CHECKED.get(version, (None, False))
    if offset is not None and (hashed or not digest):
        with open(path, "rb") as f:  # the map outlives the descriptor, and ends with the last array using it
            buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return np.frombuffer(buffer, entry["dtype"], math.prod(entry["shape"]), offset).reshape(entry["shape"])
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)  # a pickle is refused here, never loaded
    except (ValueError, OSError, EOFError, SyntaxError) as e:
        raise FileDamage(f"not a .npy array: {' '.join(str(e).split())[:80]}") from None
    if not isinstance(array, np.memmap):
        getattr(array, "close", lambda: None)()  # an .npz archive
        raise FileDamage("not a .npy array")
    if list(array.shape) != entry["shape"] or array.dtype.str != entry["dtype"]:
        raise FileDamage(f"shape {list(array.shape)} {array.dtype.str}, "
                         f"the manifest says {entry['shape']} {entry['dtype']}")
    if digest and sha256_file(path) != entry["sha256"]:
        raise FileDamage("its SHA-256 differs from the manifest's")
    _CHECKED[version] = (array.offset, digest)
    return array


class _HashingWriter:
    """A file wrapper that hashes and counts what is written through it."""

    def __init__(self, f) -> None:
        self.f, self.sha256, self.bytes = f, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.bytes += len(data)
        return self.f.write(data)


def write_array(path: Path, array: np.ndarray) -> dict[str, Any]:
    """Write ``array`` as a .npy file atomically; its manifest entry (file, shape, dtype, bytes, SHA-256)."""
    writers = []

    def write(f) -> None:
        writers.append(_HashingWriter(f))
        np.lib.format.write_array(writers[-1], array, allow_pickle=False)

    write_atomic(path, write)
    return {"file": path.name, "shape": list(array.shape), "dtype": array.dtype.str, "bytes": writers[-1].bytes,
            "sha256": writers[-1].sha256.hexdigest()}


def is_complete(manifest: dict | None) -> bool:
    return bool(manifest) and len(manifest["shards"]) == Layout.from_json(manifest["layout"]).shard_count


def drop_shard(path: Path, shard: int) -> None:
    """Remove ``shard`` from the manifest at ``path`` (the store is incomplete again) and its files."""
    try:
        manifest = read_manifest(path)
    except FileDamage:  # the next build rebuilds the whole store
        return
    entry = manifest["shards"].pop(str(shard), None) if manifest else None
    if entry:
        write_json_atomic(path / MANIFEST, manifest)
        for file in entry["files"].values():
            (path / file["file"]).unlink(missing_ok=True)

