"""The teacher-signal store: per row of a split and per position, the teacher's next-token distribution,
computed once, kept on disk in memory-mapped shards and read per batch, for every task.

A row is one example: a sequence of ``L`` positions for a language model (logits ``(N, L, V)``), one
position for classification (``(N, V)``); any shape ``(N, *P, V)`` works. Every position is stored (a mask
of target positions would save the padding but lose the O(1) lookup of a row).

Two forms, named by :func:`form_name`:

- ``exact``: the logits in the dtype that produced them (bfloat16 kept as its 16 bits), bit-identical when
  read back, so every divergence at every temperature is what the online teacher gives; ``V × 4`` bytes
  per position in float32.
- ``top<k>`` (DistillKit, EasyDistill): the k largest log-probabilities at T = 1 (float16), their token ids
  (int32) and the tail mass ``1 − Σ_k p`` (float32, summed over the other ``V − k`` tokens rather than
  subtracted, so a tiny tail keeps its digits): ``6k + 4`` bytes per position, 388 at k = 64. Read back
  sparse (:meth:`StoreReader.sparse`) for a loss over the k entries and the tail, or dense as ``log p̂``
  (``TopKTeacher.logits``): the k stored values and the tail spread evenly over the other ``V − k`` tokens.
  float16, not bfloat16: log-probabilities are ≤ 0 and those that carry mass lie in about [−20, 0], where
  float16 rounds to within ``|log p|·2⁻¹¹`` (bfloat16 ``·2⁻⁸``, 8× coarser); its range (to −65504, then
  −inf) holds the log of every float32 probability above 0 (e⁻¹⁰⁴).

On disk, one directory per split and form, ``<directory>/<split>-<form>/``: ``manifest.json`` (the layout —
form, rows, row shape, vocabulary, dtype, rows per shard — and per shard each file's shape, dtype, size
and SHA-256; complete when it lists every shard) and ``shard-00000.<array>.npy`` files (``logits``, or
``ids``, ``log_probs``, ``tail``). A build runs under the directory's lock (parallel jobs build once; the
others wait, then read), writes each shard's files atomically and then the manifest, which is the commit
point: a killed build resumes after the last shard the manifest lists.

A shard is memory-mapped for one read only: the batch's rows are copied out and the map dropped, so a
process holds what its batch touches, never the store. Every open checks the file's size against the
manifest (a stat). Its header (shape, dtype: ``np.load(mmap_mode="r", allow_pickle=False)``) and its
SHA-256 are checked at its first open in each process, again whenever the file changes (another inode,
size or modification time), and for every shard already on disk when a build takes the lock. Hashing at
every open would read the whole store per job (minutes at hundreds of GB) before the first step; once per
process is one sequential pass over what the process reads anyway. A damaged shard (truncated, the wrong
shape or dtype, not a .npy — a pickle is refused, never unpickled —, a different digest) is named in one
log line and rebuilt by the build; found while reading, it is dropped from the manifest and the read
raises :class:`DamagedStore`, so the next build rebuilds it. It is never read as data.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import mmap
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from entrenar_bench import locks
from entrenar_bench.distill.losses import TopKTeacher
from entrenar_bench.errors import ConfigError, EntrenarError
from entrenar_bench.files import config_hash, read_data, write_atomic, write_json_atomic

log = logging.getLogger(__name__)

DEFAULT_TOP_K = 64  # the top-k form's k: 388 bytes per position
EXACT_MAX_VOCAB = 1024  # the largest vocabulary stored exact by default: above it exact is ≥ 10× top-64
SHARD_BYTES = 128 << 20  # about this much per shard: the unit of resumption, and of a build's memory
MANIFEST = "manifest.json"
LOCK = ".lock"
FORMAT = "entrenar-bench teacher store"
VERSION = 1
GB = 1e9  # limits.max_teacher_store_gb and the printed sizes are decimal

_STORAGE = {"float32": "<f4", "float64": "<f8", "float16": "<f2", "bfloat16": "<u2"}  # logits dtype -> .npy dtype
_TOP_K_ARRAYS = {"ids": ("<i4", True), "log_probs": ("<f2", True), "tail": ("<f4", False)}  # dtype, has k axis
_CHECKED: dict[tuple, tuple[int, bool]] = {}  # file version -> (data offset, hashed) of files this process checked


def form_name(top_k: int) -> str:
    """``exact`` or ``top<k>``: the one place the form's name is made."""
    return f"top{top_k}" if top_k else "exact"


def default_top_k(vocab_size: int) -> int:
    """The default form by vocabulary: exact (0) up to :data:`EXACT_MAX_VOCAB` tokens, top-64 above.

    Exact costs no approximation and, up to 1,024 tokens, at most 4 KB per position (128 B for the embedded
    32-token task, less than top-64's 388 B); above, it grows to ≥ 10× the top-64 form (190 KB per position
    at 49,152 tokens)."""
    return DEFAULT_TOP_K if vocab_size > EXACT_MAX_VOCAB else 0


def bytes_per_position(vocab_size: int, top_k: int, logits_bytes: int = 4) -> int:
    """``V × logits_bytes`` (exact) or ``k × (4 + 2) + 4`` (top-k: int32 ids, float16 log-probs, the tail)."""
    return 6 * min(top_k, vocab_size) + 4 if top_k else vocab_size * logits_bytes


def estimate_bytes(positions: int, vocab_size: int, top_k: int, logits_bytes: int = 4) -> int:
    """The store's size for ``positions`` positions (rows × positions per row), less a .npy header per file."""
    return positions * bytes_per_position(vocab_size, top_k, logits_bytes)


def human_bytes(size: float) -> str:
    """``1.21 GB``: three significant digits, decimal units."""
    for unit, scale in (("TB", 1e12), ("GB", GB), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{size:.0f} B"


def describe_size(positions: int, vocab_size: int, top_k: int, logits_bytes: int = 4) -> str:
    """``top64 teacher store: 100,096 positions × 388 B = 38.8 MB`` (printed before the first job)."""
    per = bytes_per_position(vocab_size, top_k, logits_bytes)
    return (f"{form_name(top_k)} teacher store: {positions:,} positions × {per:,} B = "
            f"{human_bytes(estimate_bytes(positions, vocab_size, top_k, logits_bytes))}")


class StoreTooLarge(ConfigError, ValueError):
    """The store would pass ``limits.max_teacher_store_gb``: one line, exit code 2, nothing run."""


def check_store_size(positions: int, vocab_size: int, top_k: int, limit_gb: float, logits_bytes: int = 4) -> int:
    """The estimated size in bytes, or :class:`StoreTooLarge` (one line giving the size and, for the exact
    form, the top-k alternative) where it passes ``limit_gb``."""
    size = estimate_bytes(positions, vocab_size, top_k, logits_bytes)
    if size <= limit_gb * GB:
        return size
    hint = (f"the top-{DEFAULT_TOP_K} form would take "
            f"{human_bytes(estimate_bytes(positions, vocab_size, DEFAULT_TOP_K))}: set distill.teacher_top_k="
            f"{DEFAULT_TOP_K}" if not top_k else "store fewer positions or raise the limit")
    raise StoreTooLarge(f"{describe_size(positions, vocab_size, top_k, logits_bytes)}, above "
                        f"limits.max_teacher_store_gb={limit_gb:g}; {hint}")


class StoreMissing(EntrenarError):
    """No complete store of that split and form: build it first."""


class DamagedStore(EntrenarError):
    """A shard found damaged while reading (one line naming it); the next build rebuilds it."""


class _Damage(Exception):
    """Why one file is not the one the manifest describes (internal: the caller names the file)."""


@dataclass(frozen=True)
class Layout:
    """What a store holds: ``rows`` rows of ``row_shape`` positions over ``vocab_size`` tokens, exact
    (``top_k`` 0) logits of ``logits_dtype`` or the top-k form, ``shard_rows`` rows per shard."""

    top_k: int
    rows: int
    row_shape: tuple[int, ...]
    vocab_size: int
    logits_dtype: str
    shard_rows: int

    @classmethod
    def from_json(cls, value: dict) -> Layout:
        layout = cls(int(value["top_k"]), int(value["rows"]), tuple(int(n) for n in value["row_shape"]),
                     int(value["vocab_size"]), str(value["logits_dtype"]), int(value["shard_rows"]))
        if min(layout.rows, layout.vocab_size, layout.shard_rows) < 1 or layout.top_k < 0 or \
                layout.logits_dtype not in _STORAGE:
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
            return {"logits": (_STORAGE[self.logits_dtype], (*self.row_shape, self.vocab_size))}
        return {name: (dtype, (*self.row_shape, self.k) if has_k else self.row_shape)
                for name, (dtype, has_k) in _TOP_K_ARRAYS.items()}

    def expected(self, shard: int) -> dict[str, dict[str, Any]]:
        """The file name, shape and dtype of each of ``shard``'s files."""
        start, stop = self.bounds(shard)
        return {name: {"file": f"shard-{shard:05d}.{name}.npy", "shape": [stop - start, *trailing], "dtype": dtype}
                for name, (dtype, trailing) in self.arrays().items()}


def _read_manifest(path: Path) -> dict | None:
    """The manifest of the store at ``path``, None if there is none; :class:`_Damage` if it is not one
    (not JSON, another format, a layout out of range, a shard entry that does not match the layout)."""
    try:
        manifest = json.loads(read_data(path / MANIFEST))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise _Damage(f"not a JSON manifest: {' '.join(str(e).split())[:80]}") from None
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
        raise _Damage(f"not a teacher-store manifest ({e})") from None
    return manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _map(path: Path, entry: dict, digest: bool) -> np.ndarray:
    """A read-only memory map of the .npy file ``path`` once it matches its manifest ``entry``: its size at
    every call; its header (shape, dtype) and, with ``digest``, its SHA-256 once per process and version of
    the file (device, inode, size, modification time); :class:`_Damage` otherwise."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise _Damage("missing") from None
    if not stat.S_ISREG(info.st_mode):
        raise _Damage("not a regular file")
    if info.st_size != entry["bytes"]:
        raise _Damage(f"{info.st_size} bytes, the manifest says {entry['bytes']}")
    version = (str(path), info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, entry["sha256"])
    offset, hashed = _CHECKED.get(version, (None, False))
    if offset is not None and (hashed or not digest):
        with open(path, "rb") as f:  # the map outlives the descriptor, and ends with the last array using it
            buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return np.frombuffer(buffer, entry["dtype"], math.prod(entry["shape"]), offset).reshape(entry["shape"])
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)  # a pickle is refused here, never loaded
    except (ValueError, OSError, EOFError, SyntaxError) as e:
        raise _Damage(f"not a .npy array: {' '.join(str(e).split())[:80]}") from None
    if not isinstance(array, np.memmap):
        getattr(array, "close", lambda: None)()  # an .npz archive
        raise _Damage("not a .npy array")
    if list(array.shape) != entry["shape"] or array.dtype.str != entry["dtype"]:
        raise _Damage(f"shape {list(array.shape)} {array.dtype.str}, "
                      f"the manifest says {entry['shape']} {entry['dtype']}")
    if digest and _sha256(path) != entry["sha256"]:
        raise _Damage("its SHA-256 differs from the manifest's")
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


def _write_array(path: Path, array: np.ndarray) -> dict[str, Any]:
    """Write ``array`` as a .npy file atomically; its manifest entry (file, shape, dtype, bytes, SHA-256)."""
    writers = []

    def write(f) -> None:
        writers.append(_HashingWriter(f))
        np.lib.format.write_array(writers[-1], array, allow_pickle=False)

    write_atomic(path, write)
    return {"file": path.name, "shape": list(array.shape), "dtype": array.dtype.str, "bytes": writers[-1].bytes,
            "sha256": writers[-1].sha256.hexdigest()}


def _complete(manifest: dict | None) -> bool:
    return bool(manifest) and len(manifest["shards"]) == Layout.from_json(manifest["layout"]).shard_count


def _drop_shard(path: Path, shard: int) -> None:
    """Remove ``shard`` from the manifest at ``path`` (the store is incomplete again) and its files."""
    try:
        manifest = _read_manifest(path)
    except _Damage:  # the next build rebuilds the whole store
        return
    entry = manifest["shards"].pop(str(shard), None) if manifest else None
    if entry:
        write_json_atomic(path / MANIFEST, manifest)
        for file in entry["files"].values():
            (path / file["file"]).unlink(missing_ok=True)


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach().cpu().contiguous()
    return (tensor.view(torch.uint16) if tensor.dtype == torch.bfloat16 else tensor).numpy()


def _top_k(logits: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
    """The top-k form of ``logits`` (on their device): ids, float16 log-probs at T = 1, the tail mass
    summed over the tokens outside the top k."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    values, ids = log_probs.topk(k, dim=-1)
    tail = log_probs.exp_().scatter_(-1, ids, 0.0).sum(dim=-1)
    return {"ids": ids.to(torch.int32), "log_probs": values.to(torch.float16), "tail": tail}


def _stored_form(logits: torch.Tensor, layout: Layout) -> dict[str, np.ndarray]:
    arrays = _top_k(logits, layout.k) if layout.top_k else {"logits": logits}
    return {name: _to_numpy(tensor) for name, tensor in arrays.items()}


class StoreReader:
    """The rows of one complete store, read per call through short-lived memory maps as CPU tensors
    (pinned with ``pin_memory``; moving them to a device is the caller's)."""

    def __init__(self, path: Path, manifest: dict, pin_memory: bool = False) -> None:
        self.path = path
        self.layout = Layout.from_json(manifest["layout"])
        self.shards = manifest["shards"]
        self.pin_memory = pin_memory

    @property
    def rows(self) -> int:
        return self.layout.rows

    @property
    def is_exact(self) -> bool:
        return not self.layout.top_k

    def __len__(self) -> int:
        return self.rows

    @property
    def positions(self) -> int:
        return self.rows * math.prod(self.layout.row_shape)

    @property
    def size_bytes(self) -> int:
        """Bytes of the shard files on disk (the manifest's few kB aside)."""
        return sum(f["bytes"] for entry in self.shards.values() for f in entry["files"].values())

    def check(self) -> None:
        """Check every file's size, shape and dtype (no digests): :class:`DamagedStore` naming the first bad one."""
        for entry in self.shards.values():
            for file in entry["files"].values():
                try:
                    _map(self.path / file["file"], file, digest=False)
                except _Damage as e:
                    raise DamagedStore(f"teacher store: {self.path / file['file']} is damaged ({e})") from None

    def logits(self, index: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """The ``(B, *P, V)`` logits of rows ``index``: bit for bit as stored (exact), or the top-k form's ``log p̂``."""
        if not self.is_exact:
            return self.sparse(index).logits()
        array = torch.from_numpy(self._gather("logits", self._index(index)))
        if self.layout.logits_dtype == "bfloat16":
            array = array.view(torch.bfloat16)
        return self._out(array)

    def sparse(self, index: torch.Tensor | Sequence[int]) -> TopKTeacher:
        """The top-k form of rows ``index`` (a top-k store only): ids int64 and log-probs float32 ``(B, *P, k)``,
        the tail mass float32 ``(B, *P)``, as the losses take it (``distill/losses.py``)."""
        if self.is_exact:
            raise ValueError(f"{self.path} holds exact logits: read them with logits(), or build a top-k store")
        rows = self._index(index)
        ids, log_probs, tail = (self._out(torch.from_numpy(self._gather(name, rows, dtype)))
                                for name, dtype in zip(_TOP_K_ARRAYS, ("<i8", "<f4", "<f4")))
        return TopKTeacher(ids, log_probs, self.layout.vocab_size, tail)

    def _out(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.pin_memory() if self.pin_memory else tensor

    def _index(self, index: torch.Tensor | Sequence[int]) -> np.ndarray:
        index = index.detach().cpu() if isinstance(index, torch.Tensor) else index
        rows = np.asarray(index, dtype=np.int64).reshape(-1)
        if rows.size and (rows.min() < 0 or rows.max() >= self.rows):
            bad = rows[(rows < 0) | (rows >= self.rows)][0]
            raise IndexError(f"row {bad} is outside the {self.rows} rows of the teacher store {self.path}")
        return rows

    def _gather(self, name: str, rows: np.ndarray, dtype: str | None = None) -> np.ndarray:
        """Rows ``rows`` of the array ``name``, as ``dtype`` (default: as stored), shard by shard."""
        stored, trailing = self.layout.arrays()[name]
        out = np.empty((len(rows), *trailing), dtype=dtype or stored)
        shard_of = rows // self.layout.shard_rows
        for shard in np.unique(shard_of).tolist():
            at = np.flatnonzero(shard_of == shard)
            out[at] = self._map(shard, name)[rows[at] - shard * self.layout.shard_rows]
        return out

    def _map(self, shard: int, name: str) -> np.ndarray:
        """The shard's file, checked (digest at its first open in this process). Found damaged, it is checked
        again under the lock (a build may have just replaced it), then dropped: :class:`DamagedStore`."""
        file = self.shards[str(shard)]["files"][name]
        try:
            return _map(self.path / file["file"], file, digest=True)
        except _Damage:
            pass
        with locks.hold(self.path / LOCK, wait=True):
            try:
                return _map(self.path / file["file"], file, digest=True)
            except _Damage as e:
                _drop_shard(self.path, shard)
                raise DamagedStore(f"teacher store: {self.path / file['file']} is damaged ({e}); dropped from the "
                                   f"manifest, the next build rebuilds it") from None


ComputeChunk = Callable[[Any], torch.Tensor]


class TeacherStore:
    """The teacher-signal stores of one teacher over one data set, one per split and form, in ``directory``
    (e.g. ``teachers/<key>/outputs/<data key>``; whatever changes the logits must change the directory)::

        store = TeacherStore(teacher_dir / "outputs" / data_key)
        reader = store.build("train", lambda ids: teacher(input_ids=ids.to(device)).logits, input_ids,
                             top_k=default_top_k(vocab_size), chunk_rows=256)
        reader.sparse(batch_index)  # or reader.logits(batch_index): CPU tensors of those rows only
    """

    def __init__(self, directory: Path | str, shard_bytes: int = SHARD_BYTES) -> None:
        self.directory = Path(directory)
        self.shard_bytes = shard_bytes

    def path(self, split: str, top_k: int) -> Path:
        return self.directory / f"{split}-{form_name(top_k)}"

    def open(self, split: str, top_k: int, pin_memory: bool = False) -> StoreReader:
        """The complete store of ``split`` in that form, sizes and shapes checked: :class:`StoreMissing` if
        there is none, :class:`DamagedStore` (one line naming the file) if a file is damaged."""
        path = self.path(split, top_k)
        try:
            manifest = _read_manifest(path)
        except _Damage as e:
            raise DamagedStore(f"teacher store: {path / MANIFEST} is damaged ({e})") from None
        if not _complete(manifest):
            raise StoreMissing(f"no complete teacher store at {path}: build it first")
        reader = StoreReader(path, manifest, pin_memory)
        reader.check()
        return reader

    def build(self, split: str, compute_chunk: ComputeChunk, inputs: Any, top_k: int = 0, chunk_rows: int = 256,
              pin_memory: bool = False) -> StoreReader:
        """The store of ``split``, built first where missing, incomplete or damaged: ``compute_chunk(inputs[a:b])``
        gives the teacher's logits ``(b − a, *P, V)`` for those rows (on any device; run without gradients).
        A top-k store is reduced from the split's complete exact store when there is one, without the teacher."""
        if len(inputs) < 1 or chunk_rows < 1:
            raise ValueError(f"a teacher store needs rows and chunk_rows >= 1 (got {len(inputs)} rows, "
                             f"chunk_rows={chunk_rows})")
        path = self.path(split, top_k)
        reader = self._intact(split, top_k, len(inputs), pin_memory)
        if reader:
            return reader
        path.mkdir(parents=True, exist_ok=True)
        with locks.hold(path / LOCK, wait=True):
            reader = self._intact(split, top_k, len(inputs), pin_memory)  # another job built it while this one waited
            if reader:
                return reader
            if top_k:
                compute_chunk, inputs = self._reduction(split, len(inputs), top_k) or (compute_chunk, inputs)
            self._build_locked(path, compute_chunk, inputs, top_k, chunk_rows)
        return self.open(split, top_k, pin_memory)

    def reduce(self, split: str, top_k: int, chunk_rows: int = 256) -> StoreReader:
        """The top-k store of ``split`` made from its complete exact store (:class:`StoreMissing` without one)."""
        exact = self.open(split, 0)
        return self.build(split, exact.logits, torch.arange(exact.rows), top_k, chunk_rows)

    def _intact(self, split: str, top_k: int, rows: int, pin_memory: bool = False) -> StoreReader | None:
        """The complete store of ``rows`` rows, sizes and shapes checked; None where it is not that."""
        try:
            reader = self.open(split, top_k, pin_memory)
        except (StoreMissing, DamagedStore):
            return None
        return reader if (reader.layout.top_k, reader.rows) == (top_k, rows) else None

    def _reduction(self, split: str, rows: int, top_k: int) -> tuple[ComputeChunk, Any] | None:
        """Read the split's exact store instead of running the teacher, where it is complete and intact."""
        exact = self._intact(split, 0, rows)
        if exact is None:
            return None
        log.info("teacher store: reducing %s to the top-%d form instead of running the teacher", exact.path, top_k)
        return exact.logits, torch.arange(rows)

    def _resumable(self, path: Path, rows: int, top_k: int) -> dict | None:
        """The manifest to go on from, its damaged shards dropped (one log line each); None to start afresh."""
        try:
            manifest = _read_manifest(path)
        except _Damage as e:
            log.warning("teacher store: %s is damaged (%s); rebuilding the store", path / MANIFEST, e)
            return None
        if manifest is None:
            return None
        layout = Layout.from_json(manifest["layout"])
        if (layout.top_k, layout.rows) != (top_k, rows):
            log.warning("teacher store: %s holds %d rows of %s, not %d rows of %s; rebuilding the store", path,
                        layout.rows, form_name(layout.top_k), rows, form_name(top_k))
            return None
        for key, entry in list(manifest["shards"].items()):
            for file in entry["files"].values():
                try:
                    _map(path / file["file"], file, digest=True)
                except _Damage as e:
                    log.warning("teacher store: %s is damaged (%s); rebuilding it", path / file["file"], e)
                    del manifest["shards"][key]
                    break
        return manifest

    def _build_locked(self, path: Path, compute_chunk: ComputeChunk, inputs: Any, top_k: int, chunk_rows: int) -> None:
        for leftover in path.glob(".*.tmp"):  # a killed build's half-written file (no one else writes here)
            leftover.unlink(missing_ok=True)
        manifest = self._resumable(path, len(inputs), top_k)
        first = None
        if manifest is None:
            for stale in path.glob("shard-*.npy"):  # another layout's, or unlisted
                stale.unlink()
            logits = _compute(compute_chunk, inputs, 0, min(chunk_rows, len(inputs)), None)
            layout = self._layout(logits, len(inputs), top_k)
            first = _stored_form(logits, layout)
            del logits
            manifest = {"format": FORMAT, "version": VERSION, "layout": asdict(layout), "shards": {}}
        layout = Layout.from_json(manifest["layout"])
        for shard in range(layout.shard_count):
            if str(shard) in manifest["shards"]:
                continue
            arrays = _fill_shard(layout, shard, compute_chunk, inputs, chunk_rows, first if shard == 0 else None)
            names = layout.expected(shard)
            manifest["shards"][str(shard)] = {"files": {
                name: _write_array(path / names[name]["file"], array) for name, array in arrays.items()}}
            write_json_atomic(path / MANIFEST, manifest)
            log.info("teacher store: wrote shard %d of %d at %s", shard + 1, layout.shard_count, path)

    def _layout(self, logits: torch.Tensor, rows: int, top_k: int) -> Layout:
        """The layout for ``rows`` rows like the first chunk ``logits``: whole chunks of about ``shard_bytes``."""
        dtype = str(logits.dtype).removeprefix("torch.")
        if dtype not in _STORAGE:
            raise ValueError(f"compute_chunk returned {dtype} logits; the store keeps {', '.join(_STORAGE)}")
        row_shape, vocab = tuple(logits.shape[1:-1]), logits.shape[-1]
        row_bytes = math.prod(row_shape) * bytes_per_position(vocab, top_k, logits.element_size())
        chunk = logits.shape[0]
        return Layout(top_k, rows, row_shape, vocab, dtype, chunk * max(1, self.shard_bytes // (chunk * row_bytes)))


def _compute(compute_chunk: ComputeChunk, inputs: Any, start: int, stop: int, layout: Layout | None) -> torch.Tensor:
    """``compute_chunk(inputs[start:stop])`` without gradients, checked against the layout."""
    with torch.no_grad():
        logits = compute_chunk(inputs[start:stop])
    if not isinstance(logits, torch.Tensor) or logits.ndim < 2 or logits.shape[0] != stop - start:
        raise ValueError(f"compute_chunk gave {type(logits).__name__} {tuple(getattr(logits, 'shape', ()))} for "
                         f"rows {start}:{stop}; expected logits ({stop - start}, ..., vocabulary)")
    if layout and (tuple(logits.shape[1:]) != (*layout.row_shape, layout.vocab_size) or (
            not layout.top_k and str(logits.dtype).removeprefix("torch.") != layout.logits_dtype)):
        raise ValueError(f"compute_chunk gave {logits.dtype} {tuple(logits.shape)} for rows {start}:{stop}; the store "
                         f"holds {layout.logits_dtype} rows of {(*layout.row_shape, layout.vocab_size)}")
    return logits


def _fill_shard(layout: Layout, shard: int, compute_chunk: ComputeChunk, inputs: Any, chunk_rows: int,
                first: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    """The stored arrays of ``shard``, computed chunk by chunk (``first``: its first chunk, already computed)."""
    start, stop = layout.bounds(shard)
    arrays = {name: np.empty((stop - start, *trailing), dtype) for name, (dtype, trailing) in layout.arrays().items()}
    at = start
    while at < stop:
        part = first or _stored_form(_compute(compute_chunk, inputs, at, min(at + chunk_rows, stop), layout), layout)
        first, rows = None, len(next(iter(part.values())))
        for name, array in part.items():
            arrays[name][at - start:at - start + rows] = array
        at += rows
    return arrays


def precision_context(device: torch.device, precision: str) -> AbstractContextManager:
    """What the trainer's precision runs the teacher under: bf16/fp16 autocast when mixed, else nothing."""
    if precision.startswith(("bf16", "16")) and "mixed" in precision:
        dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
        return torch.autocast(device.type, dtype=dtype)
    return nullcontext()


def stored_sequences(teacher_dir: Path, key: Mapping[str, Any], generate: Callable[[], torch.Tensor]) -> torch.Tensor:
    """The teacher's sampled sequences for ``key`` (data config and decoding settings): generated once under a
    lock and stored beside its outputs as a ``.npy`` of token ids, then read (sequence-level KD trains every
    run on the same ones)."""
    path = teacher_dir / "outputs" / f"{config_hash(dict(key))[:16]}-train-sequences.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    with locks.hold(path.with_suffix(".lock"), wait=True):
        if not path.exists():
            sequences = generate()
            write_atomic(path, lambda f: np.save(f, sequences.numpy(), allow_pickle=False))
            log.info("stored the teacher's sequences at %s", path)
            return sequences
    log.info("read the teacher's sequences from %s", path)
    return torch.from_numpy(np.load(path, allow_pickle=False))
