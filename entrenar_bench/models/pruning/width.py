"""Width pruning of a Llama-architecture decoder, as Minitron does it (Muralidharan et al. 2024).

Each unit is ranked by the mean magnitude of its activation over the calibration tokens (``importance.py``),
and the top ones are kept, in their original order:
- MLP neuron i of layer l: ``mean |act(gate_l x)_i * (up_l x)_i|`` (the input of ``down_proj``), per layer;
- key/value group g of layer l: the sum over its query heads h of ``mean ||attn_h||_2`` (the input of
  ``o_proj``, head by head), per layer; a group goes whole, so grouped-query attention stays consistent;
- hidden channel c: ``mean |n_c|`` over the outputs n of every RMSNorm (both of every layer and the final one),
  summed; the same channels leave the embeddings, every projection, every norm and the output head.

Sizes come from ratios (``round(r * size)``, at least 1; hidden channels to a multiple of the heads kept, as
transformers' Llama config requires) or from a parameter target: of the hidden widths (multiples of the heads)
and, for each, the MLP width that meets the target by the exact count (:func:`param_count`, linear in it), the
one whose shares of hidden channels and of MLP neurons are nearest each other; the heads as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch

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


def top(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest scores, in increasing order (ties: the lower index)."""
    order = torch.argsort(-scores.double(), stable=True)[:k]
    return torch.sort(order).values


@dataclass(frozen=True)
class Kept:
    """What width pruning keeps: hidden channels, and per kept layer its MLP neurons and key/value groups."""

    hidden: torch.Tensor
    neurons: list[torch.Tensor]
    groups: list[torch.Tensor]


def kept_units(mlp: torch.Tensor, heads: torch.Tensor, hidden: torch.Tensor, shape: Shape, w: Widths) -> Kept:
    """The top units per score: ``mlp`` (layers, I), ``heads`` (layers, H) of the kept layers, ``hidden`` (D,)."""
    groups = heads.reshape(len(heads), shape.kv_heads, shape.group).sum(-1)
    return Kept(top(hidden, w.hidden), [top(s, w.intermediate) for s in mlp], [top(s, w.kv_heads) for s in groups])


def _head_rows(groups: torch.Tensor, per_group: int, head_dim: int) -> torch.Tensor:
    """Rows of a projection for the heads of ``groups`` (``per_group`` heads each, ``head_dim`` rows a head)."""
    heads = (groups[:, None] * per_group + torch.arange(per_group)).reshape(-1)
    return (heads[:, None] * head_dim + torch.arange(head_dim)).reshape(-1)


def prune_state(state: Mapping[str, torch.Tensor], stack: str, shape: Shape, kept: Kept) -> dict[str, torch.Tensor]:
    """A Llama state dict (its layers already those kept, renumbered) cut to ``kept``: rows and columns of every
    projection, embedding, norm and bias. A weight the rules do not name is an error: nothing is left unpruned."""
    c, hd = kept.hidden, shape.head_dim
    out = {}
    for key, value in state.items():
        name = key[len(stack) + 1:] if key.startswith(f"{stack}.") else None
        if name is None:
            if key.endswith(("embed_tokens.weight", "lm_head.weight")):
                out[key] = value[:, c]
            elif key.endswith("norm.weight"):
                out[key] = value[c]
            else:
                raise ValueError(f"width pruning does not know the weight {key}")
            continue
        index, _, part = name.partition(".")
        layer = int(index)
        q = _head_rows(kept.groups[layer], shape.group, hd)
        kv = _head_rows(kept.groups[layer], 1, hd)
        n = kept.neurons[layer]
        rows = {"self_attn.q_proj": q, "self_attn.k_proj": kv, "self_attn.v_proj": kv, "mlp.gate_proj": n,
                "mlp.up_proj": n, "self_attn.o_proj": c, "mlp.down_proj": c}
        columns = {"self_attn.o_proj": q, "mlp.down_proj": n}
        module, _, kind = part.rpartition(".")
        if module.endswith("layernorm"):
            out[key] = value[c]
        elif module in rows and kind == "bias":
            out[key] = value[rows[module]]
        elif module in rows and kind == "weight":
            out[key] = value[rows[module]][:, columns.get(module, c)]
        else:
            raise ValueError(f"width pruning does not know the weight {key}")
    return {k: v.contiguous() for k, v in out.items()}


def pruned_config(config, shape: Shape, w: Widths):
    """``config`` (changed in place) at widths ``w``; the head size is written out, as it no longer follows."""
    config.hidden_size, config.intermediate_size = w.hidden, w.intermediate
    config.num_attention_heads, config.num_key_value_heads = w.heads, w.kv_heads
    config.head_dim = shape.head_dim
    return config
