"""A teacher's stored next-token outputs over one split, looked up by row instead of running the teacher.

Two forms:

- exact: the full logits ``(N, L, V)`` in the dtype the teacher produced them (float32 on a CPU, bf16
  under bf16 autocast), so every divergence at every temperature is what the online teacher gives.
- top-k (DistillKit, EasyDistill): per token the k largest log-probabilities at T = 1 and their ids,
  ``(N, L, k)``. Read back as ``log p̂``: the k stored values, and the remaining mass ``1 − Σ_k p`` spread
  evenly over the other ``V − k`` tokens. The approximation is only that flat tail: the k kept
  probabilities and the total mass are exact, and since ``log p̂`` serves as logits, tempering
  ``softmax(log p̂ / T)`` is exact for that ``p̂``. Logit MSE sees ``log p̂``, not the logits (they
  differ by a per-token constant and the tail). With k ≥ V it is exact up to that constant.
"""

from __future__ import annotations

import torch

TINY = 1e-30  # floor of the tail mass: its log stays finite, so 0·log 0 terms stay 0


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

    @property
    def is_exact(self) -> bool:
        return "logits" in self.state

    def to(self, device: torch.device) -> TeacherTargets:
        return TeacherTargets({k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in self.state.items()})

    def logits(self, index: torch.Tensor) -> torch.Tensor:
        """The (B, L, V) logits (exact) or ``log p̂`` (top-k) of rows ``index``."""
        if self.is_exact:
            return self.state["logits"][index]
        values = self.state["top_log_probs"][index]
        ids = self.state["top_ids"][index].long()
        vocab, k = int(self.state["vocab_size"]), values.shape[-1]
        tail = (1 - values.exp().sum(dim=-1, keepdim=True)).clamp_min(TINY) / max(vocab - k, 1)
        out = tail.log().expand(*values.shape[:-1], vocab).clone()
        return out.scatter_(-1, ids, values)
