"""The teacher's activations on the calibration blocks, reduced to what pruning ranks by (one forward pass).

With ``h_l`` the input of decoder layer l (``h_L`` the last layer's output, before the final norm), over the
calibration tokens t (the blocks' target positions):
- ``cosine[i, j] = mean_t cos(h_i(t), h_j(t))`` and ``angular[i, j] = mean_t arccos(cos(h_i(t), h_j(t))) / π``,
  (L+1) x (L+1): block influence of layer l is ``1 - cosine[l, l+1]`` (ShortGPT, Men et al. 2024), the angular
  distance of the block [l, l+n) is ``angular[l, l+n]`` (Gromov et al. 2024);
- where the model has Llama's modules (width pruning): ``mlp[l, i] = mean_t |input of down_proj|_i``,
  ``heads[l, h] = mean_t ||input of o_proj, head h||_2`` and ``hidden[c] = Σ_norms mean_t |norm output|_c``.

Hooks on the layers themselves (not ``output_hidden_states``, whose last entry is after the final norm).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import torch
from torch import nn

from entrenar_bench.files import write_atomic


@dataclass
class Importance:
    cosine: torch.Tensor
    angular: torch.Tensor
    mlp: torch.Tensor | None
    heads: torch.Tensor | None
    hidden: torch.Tensor | None
    tokens: int

    def block_influence(self) -> torch.Tensor:
        """``1 - cos(h_l, h_{l+1})`` per layer l: how much layer l changes its input (low: removable)."""
        return 1 - torch.diagonal(self.cosine, 1)

    def save(self, path: Path) -> None:
        write_atomic(path, lambda out: torch.save({k.name: getattr(self, k.name) for k in fields(self)}, out))

    @classmethod
    def load(cls, path: Path) -> Importance:
        return cls(**torch.load(path, map_location="cpu", weights_only=True))


def _tensor(value) -> torch.Tensor:
    return value[0] if isinstance(value, tuple) else value


class _Recorder:
    """Forward hooks gathering one batch's activations at the target positions ``where`` (B, T bool)."""

    def __init__(self, layers: nn.ModuleList, norms: list[nn.Module]):
        self.states: dict[int, torch.Tensor] = {}
        self.sums: dict[str, dict[int, torch.Tensor]] = {"mlp": {}, "heads": {}, "hidden": {}}
        self.where: torch.Tensor | None = None
        self.head_dim = 0
        self.handles = []
        n = len(layers)
        for l, layer in enumerate(layers):
            self.handles.append(layer.register_forward_pre_hook(self._input(l), with_kwargs=True))
            mlp, attn = getattr(layer, "mlp", None), getattr(layer, "self_attn", None)
            if hasattr(mlp, "down_proj") and hasattr(attn, "o_proj"):
                self.head_dim = getattr(attn, "head_dim", 0)
                self.handles.append(mlp.down_proj.register_forward_pre_hook(self._mlp(l)))
                self.handles.append(attn.o_proj.register_forward_pre_hook(self._heads(l)))
        self.handles.append(layers[n - 1].register_forward_hook(self._output(n)))
        for i, norm in enumerate(norms):
            self.handles.append(norm.register_forward_hook(self._hidden(i)))

    def _pick(self, x: torch.Tensor) -> torch.Tensor:
        return x[self.where].float()  # (tokens, features)

    def _add(self, kind: str, key: int, value: torch.Tensor) -> None:
        sums = self.sums[kind]
        sums[key] = sums[key] + value if key in sums else value

    def _input(self, l):
        def hook(module, args, kwargs):
            self.states[l] = self._pick(args[0] if args else kwargs["hidden_states"])
        return hook

    def _output(self, n):
        def hook(module, args, output):
            self.states[n] = self._pick(_tensor(output))
        return hook

    def _mlp(self, l):
        def hook(module, args):
            self._add("mlp", l, self._pick(args[0]).abs().sum(0))
        return hook

    def _heads(self, l):
        def hook(module, args):
            x = self._pick(args[0])
            self._add("heads", l, x.reshape(len(x), -1, self.head_dim).norm(dim=-1).sum(0))
        return hook

    def _hidden(self, i):
        def hook(module, args, output):
            self._add("hidden", i, self._pick(_tensor(output)).abs().sum(0))
        return hook

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def llama_norms(model: nn.Module, layers: nn.ModuleList) -> list[nn.Module]:
    """Every RMSNorm whose output feeds the hidden channels: both of each layer, then the final one."""
    found = [getattr(layer, name) for layer in layers for name in ("input_layernorm", "post_attention_layernorm")
             if hasattr(layer, name)]
    final = getattr(getattr(model, "model", None), "norm", None)
    return found + ([final] if final is not None else []) if len(found) == 2 * len(layers) else []


@torch.no_grad()
def measure(model: nn.Module, layers: nn.ModuleList, ids: torch.Tensor, mask: torch.Tensor,
            batch_size: int = 8) -> Importance:
    """The :class:`Importance` of ``model`` (eval mode) on ``ids`` (N, T) at the positions ``mask`` (N, T)."""
    model.eval()
    n = len(layers)
    recorder = _Recorder(layers, llama_norms(model, layers))
    cos_sum = torch.zeros(n + 1, n + 1, dtype=torch.float64)
    ang_sum = torch.zeros(n + 1, n + 1, dtype=torch.float64)
    tokens = 0
    try:
        for rows, where in zip(ids.split(batch_size), mask.split(batch_size)):
            recorder.where = where.bool()
            recorder.states.clear()
            model(input_ids=rows)
            unit = torch.nn.functional.normalize(torch.stack([recorder.states[l] for l in range(n + 1)]), dim=-1)
            cos = torch.einsum("itd,jtd->ijt", unit, unit).clamp(-1, 1)
            cos_sum += cos.sum(-1).double()
            ang_sum += (torch.arccos(cos) / torch.pi).sum(-1).double()
            tokens += unit.shape[1]
    finally:
        recorder.close()
    if tokens == 0:
        raise ValueError("the calibration blocks have no target positions")
    sums = recorder.sums

    def stacked(kind: str) -> torch.Tensor | None:
        return torch.stack([sums[kind][k] for k in sorted(sums[kind])]) / tokens if sums[kind] else None

    hidden = stacked("hidden")
    return Importance(cosine=(cos_sum / tokens).float(), angular=(ang_sum / tokens).float(), mlp=stacked("mlp"),
                      heads=stacked("heads"), hidden=hidden.sum(0) if hidden is not None else None, tokens=tokens)
