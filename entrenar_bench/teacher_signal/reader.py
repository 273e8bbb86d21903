"""The rows of one complete teacher store, read per batch through short-lived memory maps (``shards.py``).

An exact store gives back its logits bit for bit; a top-k store gives :class:`TopKTeacher` (ids, log-probs at
T = 1, the tail mass), which the losses take as it is (``distill/losses.py``: the tail rule says what the loss
does with the mass outside the k ids), or densely as ``log p̂`` with the tail spread evenly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from entrenar_bench import locks
from entrenar_bench.distill.losses import TopKTeacher
from entrenar_bench.teacher_signal.shards import (
    LOCK, TARGETS, TOP_K_ARRAYS, DamagedStore, FileDamage, Layout, drop_shard, map_checked,
)


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
                    map_checked(self.path / file["file"], file, digest=False)
                except FileDamage as e:
                    raise DamagedStore(f"teacher store: {self.path / file['file']} is damaged ({e})") from None

    def logits(self, index: torch.Tensor | Sequence[int]) -> torch.Tensor:
        """The ``(B, *P, V)`` logits of rows ``index``: bit for bit as stored (exact), or the top-k ``log p̂``."""
        if not self.is_exact:
            return self.sparse(index).logits()
        array = torch.from_numpy(self._gather("logits", self._index(index)))
        if self.layout.logits_dtype == "bfloat16":
            array = array.view(torch.bfloat16)
        return self._out(array)

    def sparse(self, index: torch.Tensor | Sequence[int]) -> TopKTeacher:
        """The top-k form of rows ``index`` (a top-k store only): ids int64 and log-probs float32 ``(B, *P, k)``,
        the tail mass float32 ``(B, *P)`` and, where kept, the targets' log-probs ``(B, *P)``, as the losses take it
        (``distill/losses.py``)."""
        if self.is_exact:
            raise ValueError(f"{self.path} holds exact logits: read them with logits(), or build a top-k store")
        rows = self._index(index)
        ids, log_probs, tail = (self._out(torch.from_numpy(self._gather(name, rows, dtype)))
                                for name, dtype in zip(TOP_K_ARRAYS, ("<i8", "<f4", "<f4")))
        targets = self._out(torch.from_numpy(self._gather(TARGETS, rows))) if self.layout.targets else None
        return TopKTeacher(ids, log_probs, self.layout.vocab_size, tail, targets=targets)

    def read(self, index: torch.Tensor | Sequence[int]) -> torch.Tensor | TopKTeacher:
        """Rows ``index`` in the stored form: logits (exact) or :class:`TopKTeacher` (no dense teacher)."""
        return self.logits(index) if self.is_exact else self.sparse(index)

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
            return map_checked(self.path / file["file"], file, digest=True)
        except FileDamage:
            pass
        with locks.hold(self.path / LOCK, wait=True):
            try:
                return map_checked(self.path / file["file"], file, digest=True)
            except FileDamage as e:
                drop_shard(self.path, shard)
                raise DamagedStore(f"teacher store: {self.path / file['file']} is damaged ({e}); dropped from the "
                                   f"manifest, the next build rebuilds it") from None

