"""Width pruning of a Llama-architecture decoder, as Minitron does it (Muralidharan et al. 2024).

Each unit is ranked by the mean magnitude of its activation over the calibration tokens (``importance.py``),
and the top ones are kept, in their original order:
- MLP neuron i of layer l: ``mean |act(gate_l x)_i * (up_l x)_i|`` (the input of ``down_proj``), per layer;
- key/value group g of layer l: the sum over its query heads h of ``mean ||attn_h||_2`` (the input of
  ``o_proj``, head by head), per layer; a group goes whole, so grouped-query attention stays consistent;
- hidden channel c: ``mean |n_c|`` over the outputs n of every RMSNorm (both of every layer and the final one),
  summed; the same channels leave the embeddings, every projection, every norm and the output head.

The sizes kept (from ratios or a parameter target) are ``sizes.py``'s, which needs no torch (the checks before
launch use it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from entrenar_bench.models.pruning.sizes import Widths
from entrenar_bench.models.pruning.spec import Shape


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
