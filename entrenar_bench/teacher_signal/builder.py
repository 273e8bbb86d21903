"""A teacher store built: the teacher run chunk by chunk over a split's rows, its logits kept exact or reduced to
the top-k form, written shard by shard under the directory's lock (``shards.py``).

Parallel jobs build once: the others wait on the lock, then read. A killed build resumes after the last shard its
manifest lists; a damaged shard found when the lock is taken is named in one log line and rebuilt. A top-k store
is reduced from the split's complete exact store when there is one, without running the teacher. The teacher runs
under the trainer's precision (:func:`precision_context`: bf16/fp16 autocast when mixed).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from entrenar_bench import locks
from entrenar_bench.files import write_json_atomic
from entrenar_bench.teacher_signal.reader import StoreReader
from entrenar_bench.teacher_signal.shards import (
    FORMAT, LOCK, MANIFEST, STORAGE, TARGETS, VERSION, DamagedStore, FileDamage, Layout, StoreMissing, is_complete,
    map_checked, read_manifest, write_array,
)
from entrenar_bench.teacher_signal.sizing import bytes_per_position, form_name

log = logging.getLogger(__name__)

SHARD_BYTES = 128 << 20  # about this much per shard: the unit of resumption, and of a build's memory


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach().cpu().contiguous()
    return (tensor.view(torch.uint16) if tensor.dtype == torch.bfloat16 else tensor).numpy()


def _top_k(logits: torch.Tensor, k: int, next_ids: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """The top-k form of ``logits`` (on their device): ids, float16 log-probs at T = 1, the tail mass
    summed over the tokens outside the top k; with ``next_ids`` (the id read next at each position, −1: none)
    also ``targets``, the float32 log-prob of that id (0 where none: probability 1, no factor)."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    values, ids = log_probs.topk(k, dim=-1)
    arrays = {"ids": ids.to(torch.int32), "log_probs": values.to(torch.float16)}
    if next_ids is not None:
        next_ids = next_ids.to(log_probs.device)
        read = log_probs.gather(-1, next_ids.clamp_min(0)[..., None])[..., 0]
        arrays[TARGETS] = torch.where(next_ids >= 0, read, torch.zeros_like(read))
    arrays["tail"] = log_probs.exp_().scatter_(-1, ids, 0.0).sum(dim=-1)
    return arrays


def _stored_form(logits: torch.Tensor, layout: Layout, next_ids: torch.Tensor | None) -> dict[str, np.ndarray]:
    arrays = _top_k(logits, layout.k, next_ids if layout.targets else None) if layout.top_k else {"logits": logits}
    return {name: _to_numpy(tensor) for name, tensor in arrays.items()}



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
            manifest = read_manifest(path)
        except FileDamage as e:
            raise DamagedStore(f"teacher store: {path / MANIFEST} is damaged ({e})") from None
        if not is_complete(manifest):
            raise StoreMissing(f"no complete teacher store at {path}: build it first")
        reader = StoreReader(path, manifest, pin_memory)
        reader.check()
        return reader

    def build(self, split: str, compute_chunk: ComputeChunk, inputs: Any, top_k: int = 0, chunk_rows: int = 256,
              pin_memory: bool = False, next_ids: torch.Tensor | None = None) -> StoreReader:
        """The store of ``split``, built first where missing, incomplete or damaged: ``compute_chunk(inputs[a:b])``
        gives the teacher's logits ``(b − a, *P, V)`` for those rows (on any device; run without gradients).
        A top-k store is reduced from the split's complete exact store when there is one, without the teacher.
        ``next_ids`` ``(rows, *P)``: the id read next at each position (−1: none), whose log-prob a top-k store
        keeps beside its k entries (``Layout.targets``); a top-k store without them is then built anew."""
        if len(inputs) < 1 or chunk_rows < 1:
            raise ValueError(f"a teacher store needs rows and chunk_rows >= 1 (got {len(inputs)} rows, "
                             f"chunk_rows={chunk_rows})")
        path = self.path(split, top_k)
        targets = bool(top_k) and next_ids is not None
        reader = self._intact(split, top_k, len(inputs), pin_memory, targets)
        if reader:
            return reader
        path.mkdir(parents=True, exist_ok=True)
        with locks.hold(path / LOCK, wait=True):
            reader = self._intact(split, top_k, len(inputs), pin_memory, targets)  # built while this one waited
            if reader:
                return reader
            if top_k:
                compute_chunk, inputs = self._reduction(split, len(inputs), top_k) or (compute_chunk, inputs)
            self._build_locked(path, compute_chunk, inputs, top_k, chunk_rows, next_ids if targets else None)
        return self.open(split, top_k, pin_memory)

    def reduce(self, split: str, top_k: int, chunk_rows: int = 256) -> StoreReader:
        """The top-k store of ``split`` made from its complete exact store (:class:`StoreMissing` without one)."""
        exact = self.open(split, 0)
        return self.build(split, exact.logits, torch.arange(exact.rows), top_k, chunk_rows)

    def _intact(self, split: str, top_k: int, rows: int, pin_memory: bool = False,
                targets: bool = False) -> StoreReader | None:
        """The complete store of ``rows`` rows (with ``targets`` where asked), sizes and shapes checked; None where it
        is not that."""
        try:
            reader = self.open(split, top_k, pin_memory)
        except (StoreMissing, DamagedStore):
            return None
        layout = reader.layout
        return reader if (layout.top_k, layout.rows) == (top_k, rows) and layout.targets >= targets else None

    def _reduction(self, split: str, rows: int, top_k: int) -> tuple[ComputeChunk, Any] | None:
        """Read the split's exact store instead of running the teacher, where it is complete and intact."""
        exact = self._intact(split, 0, rows)
        if exact is None:
            return None
        log.info("teacher store: reducing %s to the top-%d form instead of running the teacher", exact.path, top_k)
        return exact.logits, torch.arange(rows)

    def _resumable(self, path: Path, rows: int, top_k: int, targets: bool) -> dict | None:
        """The manifest to go on from, its damaged shards dropped (one log line each); None to start afresh."""
        try:
            manifest = read_manifest(path)
        except FileDamage as e:
            log.warning("teacher store: %s is damaged (%s); rebuilding the store", path / MANIFEST, e)
            return None
        if manifest is None:
            return None
        layout = Layout.from_json(manifest["layout"])
        if (layout.top_k, layout.rows, layout.targets) != (top_k, rows, targets):
            log.warning("teacher store: %s holds %d rows of %s%s, not %d rows of %s%s; rebuilding the store", path,
                        layout.rows, form_name(layout.top_k), " with targets" * layout.targets, rows, form_name(top_k),
                        " with targets" * targets)
            return None
        for key, entry in list(manifest["shards"].items()):
            for file in entry["files"].values():
                try:
                    map_checked(path / file["file"], file, digest=True)
                except FileDamage as e:
                    log.warning("teacher store: %s is damaged (%s); rebuilding it", path / file["file"], e)
                    del manifest["shards"][key]
                    break
        return manifest

    def _build_locked(self, path: Path, compute_chunk: ComputeChunk, inputs: Any, top_k: int, chunk_rows: int,
                      next_ids: torch.Tensor | None) -> None:
        for leftover in path.glob(".*.tmp"):  # a killed build's half-written file (no one else writes here)
            leftover.unlink(missing_ok=True)
        manifest = self._resumable(path, len(inputs), top_k, next_ids is not None)
        first = None
        if manifest is None:
            for stale in path.glob("shard-*.npy"):  # another layout's, or unlisted
                stale.unlink()
            stop = min(chunk_rows, len(inputs))
            logits = _compute(compute_chunk, inputs, 0, stop, None)
            layout = self._layout(logits, len(inputs), top_k, next_ids is not None)
            first = _stored_form(logits, layout, None if next_ids is None else next_ids[:stop])
            del logits
            manifest = {"format": FORMAT, "version": VERSION, "layout": asdict(layout), "shards": {}}
        layout = Layout.from_json(manifest["layout"])
        for shard in range(layout.shard_count):
            if str(shard) in manifest["shards"]:
                continue
            arrays = _fill_shard(layout, shard, compute_chunk, inputs, chunk_rows, first if shard == 0 else None,
                                 next_ids)
            names = layout.expected(shard)
            manifest["shards"][str(shard)] = {"files": {
                name: write_array(path / names[name]["file"], array) for name, array in arrays.items()}}
            write_json_atomic(path / MANIFEST, manifest)
            log.info("teacher store: wrote shard %d of %d at %s", shard + 1, layout.shard_count, path)

    def _layout(self, logits: torch.Tensor, rows: int, top_k: int, targets: bool) -> Layout:
        """The layout for ``rows`` rows like the first chunk ``logits``: whole chunks of about ``shard_bytes``."""
        dtype = str(logits.dtype).removeprefix("torch.")
        if dtype not in STORAGE:
            raise ValueError(f"compute_chunk returned {dtype} logits; the store keeps {', '.join(STORAGE)}")
        row_shape, vocab = tuple(logits.shape[1:-1]), logits.shape[-1]
        row_bytes = math.prod(row_shape) * bytes_per_position(vocab, top_k, logits.element_size(), targets)
        chunk = logits.shape[0]
        return Layout(top_k, rows, row_shape, vocab, dtype, chunk * max(1, self.shard_bytes // (chunk * row_bytes)),
                      targets)


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
                first: dict[str, np.ndarray] | None, next_ids: torch.Tensor | None) -> dict[str, np.ndarray]:
    """The stored arrays of ``shard``, computed chunk by chunk (``first``: its first chunk, already computed)."""
    start, stop = layout.bounds(shard)
    arrays = {name: np.empty((stop - start, *trailing), dtype) for name, (dtype, trailing) in layout.arrays().items()}
    at = start
    while at < stop:
        end = min(at + chunk_rows, stop)
        part = first or _stored_form(_compute(compute_chunk, inputs, at, end, layout), layout,
                                     None if next_ids is None else next_ids[at:end])
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

