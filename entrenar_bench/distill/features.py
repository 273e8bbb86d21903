"""What layer matching and attention transfer compare, for feature maps (images, signals) and for token states.

Each term is a module (its projections train with the student) called as ``term(student, teacher, mask)`` on
two :class:`~entrenar_bench.distill.objective.ModelOutputs` (``.hidden``, ``.attentions``); it says what it
needs of the models (``needs_hidden``, ``needs_attentions``). Layers are paired by :func:`uniform_layer_map`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from entrenar_bench.distill import losses


def uniform_layer_map(num_student: int, num_teacher: int) -> list[int]:
    """Student layer i ↦ teacher layer ⌈(i+1)·L_t/L_s⌉−1: evenly spread, last to last."""
    return [-(-(i + 1) * num_teacher // num_student) - 1 for i in range(num_student)]


def _is_map(t: torch.Tensor) -> bool:
    return t.dim() >= 3


def _pool_to(x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    if tuple(x.shape[2:]) == tuple(size):
        return x
    pool = F.adaptive_avg_pool2d if len(size) == 2 else F.adaptive_avg_pool1d
    return pool(x, tuple(size) if len(size) == 2 else size[0])


def _to_vector(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(2).mean(-1) if _is_map(x) else x


class Projection(nn.Module):
    """P_i: maps a student hidden state onto the shape of its teacher state.

    Maps to maps: 1×1 convolution over channels (teacher map pooled to the student's size).
    Anything else: both sides as vectors (maps globally averaged), then a linear layer.
    """

    def __init__(self, student: torch.Tensor, teacher: torch.Tensor):
        super().__init__()
        self.maps = _is_map(student) and _is_map(teacher) and student.dim() == teacher.dim()
        if self.maps:
            conv = nn.Conv2d if student.dim() == 4 else nn.Conv1d
            self.proj = conv(student.shape[1], teacher.shape[1], kernel_size=1)
        else:
            self.proj = nn.Linear(student.shape[1], teacher.shape[1])

    def forward(self, student: torch.Tensor, teacher: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.maps:
            return self.proj(student), _pool_to(teacher, student.shape[2:])
        return self.proj(_to_vector(student)), _to_vector(teacher)


class MapLayerMatching(nn.Module):
    """PKD on per-example hidden states (maps or vectors), from one probe of each model's states."""

    needs_hidden, needs_attentions = True, False

    def __init__(self, student_hidden: Sequence[torch.Tensor], teacher_hidden: Sequence[torch.Tensor]):
        super().__init__()
        if not student_hidden or not teacher_hidden:
            raise ValueError("layer matching needs models with forward_with_hidden()")
        self.layer_map = uniform_layer_map(len(student_hidden), len(teacher_hidden))
        self.projections = nn.ModuleList(Projection(s, teacher_hidden[j])
                                         for s, j in zip(student_hidden, self.layer_map))

    def forward(self, student, teacher, mask=None) -> torch.Tensor:
        pairs = [proj(student.hidden[i], teacher.hidden[j])
                 for i, (proj, j) in enumerate(zip(self.projections, self.layer_map))]
        return losses.hidden_state_mse(pairs)


class MapAttentionTransfer(nn.Module):
    """Zagoruyko & Komodakis attention transfer between the mapped feature maps (B, C, H, W) of both models."""

    needs_hidden, needs_attentions = True, False

    def __init__(self, student_hidden: Sequence[torch.Tensor], teacher_hidden: Sequence[torch.Tensor]):
        super().__init__()
        s_maps = [i for i, h in enumerate(student_hidden) if _is_map(h)]
        t_maps = [i for i, h in enumerate(teacher_hidden) if _is_map(h)]
        if not s_maps or not t_maps:
            raise ValueError("attention transfer needs feature maps (B, C, H, W) from both models")
        mapped = uniform_layer_map(len(s_maps), len(t_maps))
        self.attention_map = [(s_maps[i], t_maps[j]) for i, j in enumerate(mapped)]

    def forward(self, student, teacher, mask=None) -> torch.Tensor:
        pairs = [(student.hidden[i], _pool_to(teacher.hidden[j], student.hidden[i].shape[2:]))
                 for i, j in self.attention_map]
        return losses.attention_transfer(pairs)


class TokenLayerMatching(nn.Module):
    """PKD on token states: each student layer's (B, T, D_s) states through a learned linear map onto its mapped
    teacher layer's (B, T, D_t), masked token mean of the MSE."""

    needs_hidden, needs_attentions = True, False

    def __init__(self, student_layers: int, teacher_layers: int, student_width: int, teacher_width: int):
        super().__init__()
        if student_layers < 1 or teacher_layers < 1:
            raise ValueError(f"layer matching needs layers in both models (student {student_layers}, "
                             f"teacher {teacher_layers})")
        self.layer_map = uniform_layer_map(student_layers, teacher_layers)
        self.projections = nn.ModuleList(nn.Linear(student_width, teacher_width) for _ in self.layer_map)

    def forward(self, student, teacher, mask) -> torch.Tensor:
        pairs = [(proj(student.hidden[i]), teacher.hidden[j])
                 for i, (proj, j) in enumerate(zip(self.projections, self.layer_map))]
        return losses.hidden_state_mse(pairs, mask)


class TokenAttentionTransfer(nn.Module):
    """MiniLM: KL between the mapped layers' head-averaged attention distributions (B, H, T, T)."""

    needs_hidden, needs_attentions = False, True

    def __init__(self, student_layers: int, teacher_layers: int):
        super().__init__()
        if student_layers < 1 or teacher_layers < 1:
            raise ValueError(f"attention transfer needs layers in both models (student {student_layers}, "
                             f"teacher {teacher_layers})")
        self.attention_map = list(enumerate(uniform_layer_map(student_layers, teacher_layers)))

    def forward(self, student, teacher, mask) -> torch.Tensor:
        pairs = [(student.attentions[i], teacher.attentions[j]) for i, j in self.attention_map]
        return losses.attention_kl(pairs, mask)
