"""The widths a width-pruned Llama decoder keeps, and its exact parameter count (no torch: the checks before
launch use them).

Sizes come from ratios (``round(r * size)``, at least 1; hidden channels to a multiple of the heads kept, as
transformers' Llama config requires) or from a parameter target: of the hidden widths (multiples of the heads)
and, for each, the MLP width that meets the target by the exact count (:func:`param_count`, linear in it), the
one whose shares of hidden channels and of MLP neurons are nearest each other; the heads as given.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from entrenar_bench.errors import ConfigError
from entrenar_bench.models.pruning.spec import PARAMS_TOLERANCE, PruneSpec, Shape


@dataclass(frozen=True)
class Widths:
    """A pruned decoder's sizes (each layer alike)."""

    hidden: int
    intermediate: int
    heads: int
    kv_heads: int

    def as_record(self) -> dict[str, int]:
        return asdict(self)


def full_widths(shape: Shape) -> Widths:
    return Widths(shape.hidden, shape.intermediate, shape.heads, shape.kv_heads)


def param_count(shape: Shape, layers: int, w: Widths) -> int:
    """Parameters of a Llama decoder of ``layers`` layers at widths ``w`` (head size unchanged):
    ``V D (2 if untied else 1) + D + layers (D hd (2 H + 2 KV) + 3 D I + 2 D + biases)``."""
    d, hd = w.hidden, shape.head_dim
    attention = d * hd * (2 * w.heads + 2 * w.kv_heads) + (hd * (w.heads + 2 * w.kv_heads) + d) * shape.attention_bias
    mlp = 3 * d * w.intermediate + (2 * w.intermediate + d) * shape.mlp_bias
    embeddings = shape.vocab * d * (1 if shape.tied else 2)
    return embeddings + d + layers * (attention + mlp + 2 * d)


def _scaled(size: int, ratio: float | None, multiple: int = 1) -> int:
    """``round(ratio * size)`` to the nearest multiple of ``multiple`` (at least one); ``size`` for no ratio."""
    return size if ratio is None else multiple * max(1, round(ratio * size / multiple))


def target_widths(shape: Shape, spec: PruneSpec, layers: int) -> Widths:
    """The widths ``spec`` asks for with ``layers`` layers kept; a parameter target it cannot meet within 5 %
    is a ConfigError giving the reachable range."""
    heads = shape.heads if spec.heads is None else spec.heads
    kv = heads // shape.group
    if spec.params is None:
        return Widths(_scaled(shape.hidden, spec.hidden_ratio, heads), _scaled(shape.intermediate, spec.mlp_ratio),
                      heads, kv)
    candidates = []
    for hidden in range(heads, shape.hidden + 1, heads):  # each hidden width, the MLP width that meets the target
        per_neuron = layers * (3 * hidden + 2 * shape.mlp_bias)
        rest = param_count(shape, layers, Widths(hidden, 0, heads, kv))
        neurons = min(shape.intermediate, max(1, round((spec.params - rest) / per_neuron)))
        w = Widths(hidden, neurons, heads, kv)
        if abs(param_count(shape, layers, w) - spec.params) <= PARAMS_TOLERANCE * spec.params:
            candidates.append(w)
    if not candidates:
        smallest = param_count(shape, layers, Widths(heads, 1, heads, kv))
        largest = param_count(shape, layers, Widths(shape.hidden, shape.intermediate, heads, kv))
        raise ConfigError(f"student.params={spec.params} is out of reach with {layers} layers and {heads} heads: "
                          f"from {smallest} to {largest} parameters")
    # the same share of hidden channels and of MLP neurons, as near as the target allows
    return min(candidates, key=lambda w: (abs(w.hidden / shape.hidden - w.intermediate / shape.intermediate),
                                          abs(param_count(shape, layers, w) - spec.params)))
