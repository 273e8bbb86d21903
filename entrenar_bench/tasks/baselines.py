"""The trivial language models a student must beat to be worth anything, as held-out cross-entropies (nats):

    uniform  = ln V
    unigram  = −(1/|H|) Σ_{w ∈ H} ln p(w),    p(w) = (c(w) + 1) / (C + V)

where c(w) counts token w among the target tokens of the training split (all of it, not only the student's
subset: the frequencies a reader could count from the same text), C = Σ c(w), H is the held-out split's target
tokens and the +1 (add-one, Laplace smoothing) gives every token of the vocabulary V a non-zero probability. A
student whose held-out cross-entropy is not below the unigram's predicts no better than word frequencies.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch only where the baselines are computed: aggregation reads SMOOTHING without it
    import torch

SMOOTHING = "add-one (Laplace): p(w) = (c(w) + 1) / (C + V)"


def target_tokens(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The ids that are targets (``mask`` True; position 0 never predicts), flattened."""
    return ids[mask.bool()]


def unigram_cross_entropy(train_tokens: torch.Tensor, heldout_tokens: torch.Tensor, vocab_size: int) -> float:
    """The module's unigram cross-entropy of ``heldout_tokens`` under the add-one model of ``train_tokens``."""
    import torch

    counts = torch.bincount(train_tokens.flatten().long(), minlength=vocab_size)[:vocab_size].double()
    log_p = torch.log((counts + 1) / (counts.sum() + vocab_size))
    return float(-log_p[heldout_tokens.flatten().long()].mean())


def lm_baselines(splits: dict[str, Any], vocab_size: int) -> dict[str, Any]:
    """``uniform`` and ``unigram`` (test split) and ``val_unigram`` from ``(ids, mask)`` per split."""
    train = target_tokens(*splits["train"])
    held = {name: target_tokens(*splits[name]) for name in ("val", "test")}
    return {"uniform": math.log(vocab_size), "unigram": unigram_cross_entropy(train, held["test"], vocab_size),
            "val_unigram": unigram_cross_entropy(train, held["val"], vocab_size),
            "smoothing": SMOOTHING, "fitted_on": f"training split ({len(train)} target tokens)"}
