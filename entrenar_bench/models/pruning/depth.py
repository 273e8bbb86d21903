"""Which of the teacher's L decoder layers a student keeps (``student.method``, ``student.keep`` = K):

- ``first``: layers 0..K-1; ``spread``: ``round(i (L-1) / (K-1))``, first and last kept, evenly between;
- ``list``: ``student.layers``, an increasing list (or ``first:K`` / ``spread:K``, as before);
- ``block_influence`` (ShortGPT, Men et al. 2024): the K layers of highest ``BI_l = 1 - cos(h_l, h_{l+1})``
  (the L - K layers that change their input least are dropped);
- ``angular`` (Gromov et al. 2024): the contiguous block [l, l+n), n = L - K, of smallest
  ``d(l) = arccos(cos(h_l, h_{l+n})) / π`` is dropped, over l + n <= L - 1 (the last layer is always kept).
"""

from __future__ import annotations

import torch

from entrenar_bench.models.pruning.importance import Importance

def angular_distances(importance: Importance, dropped: int) -> torch.Tensor:
    """``d(l)`` for every start l of a block of ``dropped`` layers that leaves the last layer: l = 0..L-1-n."""
    layers = importance.cosine.shape[0] - 1
    return torch.stack([importance.angular[l, l + dropped] for l in range(layers - dropped)])


def ranked_layers(method: str, keep: int, importance: Importance) -> tuple[list[int], list[float]]:
    """The kept layers by importance and the scores they were chosen by (per layer for ``block_influence``,
    per block start for ``angular``)."""
    layers = importance.cosine.shape[0] - 1
    if method == "block_influence":
        scores = importance.block_influence()
        kept = sorted(torch.argsort(-scores.double(), stable=True)[:keep].tolist())
        return kept, scores.tolist()
    if method != "angular":
        raise ValueError(f"no importance ranking for method {method!r}")
    dropped = layers - keep
    if dropped == 0:
        return list(range(layers)), []
    distances = angular_distances(importance, dropped)
    start = int(torch.argmin(distances))
    return [l for l in range(layers) if not start <= l < start + dropped], distances.tolist()
