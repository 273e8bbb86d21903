"""The teacher-signal store: a cached teacher's outputs over a split, computed once, stored beside the teacher
and read by row by every run of every sweep instead of running it. One store for every task.

``teachers/<key>/outputs/<data>-<split>-<form>.pt``: ``<data>`` hashes the full data config (the student's
subset included) and the precision they were computed in; ``<split>`` is ``train`` (the student's training
rows), ``val`` or ``test``; ``<form>`` is ``exact`` or ``top<k>``, the same for every split. Each chunk of rows
is reduced to its stored form as it is computed; each file is written atomically, under the teacher's lock.

Two forms, for logits of any leading shape (``(N, V)`` per example, ``(N, L, V)`` per token):

- exact: the full logits in the dtype the teacher produced them (float32 on a CPU, bf16 under bf16 autocast),
  so every divergence at every temperature is what the online teacher gives.
- top-k (DistillKit, EasyDistill): the k largest log-probabilities at T = 1 and their ids. Read back as
  ``log p̂``: the k stored values, and the remaining mass ``1 − Σ_k p`` spread evenly over the other ``V − k``
  tokens. The approximation is only that flat tail: the k kept probabilities and the total mass are exact, and
  since ``log p̂`` serves as logits, tempering ``softmax(log p̂ / T)`` is exact for that ``p̂``. Logit MSE sees
  ``log p̂``, not the logits (they differ by a constant per position and the tail).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import torch

from entrenar_bench.files import config_hash, write_atomic

log = logging.getLogger(__name__)

TINY = 1e-30  # floor of the tail mass: its log stays finite, so 0·log 0 terms stay 0


def form_name(top_k: int) -> str:
    """``exact`` or ``top<k>``: the stored form's name, in file names and in the run record."""
    return f"top{top_k}" if top_k else "exact"


class TeacherTargets:
    """Stored outputs of one split: :meth:`exact` or :meth:`top_k` of the teacher's logits."""

    def __init__(self, state: dict[str, torch.Tensor | int]):
        self.state = state

    @classmethod
    def exact(cls, logits: torch.Tensor) -> TeacherTargets:
        return cls({"logits": logits})

    @classmethod
    def top_k(cls, logits: torch.Tensor, k: int) -> TeacherTargets:
        """Keep the ``k`` largest log-probabilities (float32, at T = 1) and their ids."""
        values, ids = torch.log_softmax(logits.float(), dim=-1).topk(min(k, logits.shape[-1]), dim=-1)
        return cls({"top_log_probs": values, "top_ids": ids.to(torch.int32), "vocab_size": logits.shape[-1]})

    @classmethod
    def of(cls, logits: torch.Tensor, top_k: int) -> TeacherTargets:
        return cls.top_k(logits, top_k) if top_k else cls.exact(logits)

    @property
    def is_exact(self) -> bool:
        return "logits" in self.state

    def to(self, device: torch.device) -> TeacherTargets:
        return TeacherTargets({k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in self.state.items()})

    def logits(self, index: torch.Tensor) -> torch.Tensor:
        """The (B, ..., V) logits (exact) or ``log p̂`` (top-k) of rows ``index``."""
        if self.is_exact:
            return self.state["logits"][index]
        values = self.state["top_log_probs"][index]
        ids = self.state["top_ids"][index].long()
        vocab, k = int(self.state["vocab_size"]), values.shape[-1]
        tail = (1 - values.exp().sum(dim=-1, keepdim=True)).clamp_min(TINY) / max(vocab - k, 1)
        out = tail.log().expand(*values.shape[:-1], vocab).clone()
        return out.scatter_(-1, ids, values)


def precision_context(device: torch.device, precision: str) -> AbstractContextManager:
    """What the trainer's precision runs the teacher under: bf16/fp16 autocast when mixed, else nothing."""
    if precision.startswith(("bf16", "16")) and "mixed" in precision:
        dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
        return torch.autocast(device.type, dtype=dtype)
    return nullcontext()


@torch.no_grad()
def compute_targets(logits_of: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, top_k: int,
                    device: torch.device, precision: str, chunk: int) -> TeacherTargets:
    """``logits_of`` over every row of ``inputs``, ``chunk`` rows at a time on ``device``, each chunk kept in
    its stored form (exact, or ``top_k``) on the CPU."""
    parts = []
    with precision_context(device, precision):
        for rows in inputs.split(chunk):
            parts.append(TeacherTargets.of(logits_of(rows.to(device)), top_k).to(torch.device("cpu")).state)
    return TeacherTargets({key: torch.cat([p[key] for p in parts]) if isinstance(value, torch.Tensor) else value
                           for key, value in parts[0].items()})


def output_path(teacher_dir: Path, data_cfg: Mapping[str, Any], precision: str, split: str, top_k: int) -> Path:
    key = config_hash({"data": data_cfg, "precision": precision})[:16]
    return teacher_dir / "outputs" / f"{key}-{split}-{form_name(top_k)}.pt"


def stored_targets(teacher_dir: Path, lock: AbstractContextManager, data_cfg: Mapping[str, Any], splits: tuple[str, ...],
                   inputs_of: Callable[[str], torch.Tensor], logits_of: Callable[[torch.Tensor], torch.Tensor],
                   top_k: int = 0, device: torch.device | None = None, precision: str = "32-true",
                   chunk: int = 256) -> dict[str, TeacherTargets]:
    """The teacher's stored outputs for ``splits`` (computed under ``lock`` and written first where missing).
    ``data_cfg``: the resolved data config they belong to; ``inputs_of(split)``: the split's inputs in row order;
    ``logits_of(inputs)``: the teacher's logits of a chunk of them."""
    device = device or torch.device("cpu")
    paths = {split: output_path(teacher_dir, data_cfg, precision, split, top_k) for split in splits}
    missing = [split for split, path in paths.items() if not path.exists()]
    if missing:
        with lock:
            for split in missing:
                if paths[split].exists():  # another job wrote it while this one waited
                    continue
                targets = compute_targets(logits_of, inputs_of(split), top_k, device, precision, chunk)
                write_atomic(paths[split], lambda f, t=targets: torch.save(t.state, f))
                log.info("stored the teacher's %s outputs at %s", split, paths[split])
    return {split: TeacherTargets(torch.load(path, map_location="cpu", weights_only=True)) for split, path in paths.items()}


def stored_sequences(teacher_dir: Path, lock: AbstractContextManager, key: Mapping[str, Any],
                     generate: Callable[[], torch.Tensor]) -> torch.Tensor:
    """The teacher's sampled sequences for ``key`` (data config and decoding settings): generated once under
    ``lock`` and stored beside its outputs, then read (sequence-level KD trains every run on the same ones)."""
    path = teacher_dir / "outputs" / f"{config_hash(dict(key))[:16]}-train-sequences.pt"
    with lock:
        if not path.exists():
            sequences = generate()
            write_atomic(path, lambda f: torch.save(sequences, f))
            log.info("stored the teacher's sequences at %s", path)
            return sequences
    log.info("read the teacher's sequences from %s", path)
    return torch.load(path, map_location="cpu", weights_only=True)
