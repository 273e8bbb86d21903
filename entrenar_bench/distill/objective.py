"""The distillation objective: weighted loss terms plus the learned layer projections.

``loss = (1−α)·CE(z_s, y) + α·logit_term + layer_weight·PKD + attention_weight·AT``

where ``logit_term`` is one of the divergences of ``losses.py`` with each sample one token (``kl`` is
Hinton KD, ``mse`` logit MSE) or absent (``none``).
Every strategy in ``conf/distill`` is a setting of these weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from entrenar_bench.distill import losses
from entrenar_bench.distill.settings import DistillSettings


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


class DistillationObjective(nn.Module):
    """Builds the loss from settings; owns the projections (trained with the student)."""

    def __init__(
        self,
        settings: DistillSettings,
        student_hidden: Sequence[torch.Tensor] = (),
        teacher_hidden: Sequence[torch.Tensor] = (),
    ):
        super().__init__()
        self.settings = settings
        self.layer_map: list[int] = []
        self.attention_map: list[tuple[int, int]] = []
        self.projections = nn.ModuleList()
        if settings.layer_weight > 0:
            if not student_hidden or not teacher_hidden:
                raise ValueError("layer matching needs models with forward_with_hidden()")
            self.layer_map = uniform_layer_map(len(student_hidden), len(teacher_hidden))
            self.projections.extend(
                Projection(s, teacher_hidden[j]) for s, j in zip(student_hidden, self.layer_map)
            )
        if settings.attention_weight > 0:
            s_maps = [i for i, h in enumerate(student_hidden) if _is_map(h)]
            t_maps = [i for i, h in enumerate(teacher_hidden) if _is_map(h)]
            if not s_maps or not t_maps:
                raise ValueError("attention transfer needs feature maps (B, C, H, W) from both models")
            mapped = uniform_layer_map(len(s_maps), len(t_maps))
            self.attention_map = [(s_maps[i], t_maps[j]) for i, j in enumerate(mapped)]

    def forward(
        self,
        student_logits: torch.Tensor,
        targets: torch.Tensor,
        teacher_logits: torch.Tensor | None = None,
        student_hidden: Sequence[torch.Tensor] = (),
        teacher_hidden: Sequence[torch.Tensor] = (),
    ) -> dict[str, torch.Tensor]:
        """Return every term and their weighted sum under ``"loss"``."""
        s = self.settings
        terms = {"ce": F.cross_entropy(student_logits, targets)}
        loss = terms["ce"]
        if s.logit_loss != "none" and s.alpha > 0:
            terms["kd"] = losses.example_divergence(s, student_logits, teacher_logits)
            loss = (1 - s.alpha) * terms["ce"] + s.alpha * terms["kd"]
        if self.layer_map:
            pairs = [
                proj(student_hidden[i], teacher_hidden[j])
                for i, (proj, j) in enumerate(zip(self.projections, self.layer_map))
            ]
            terms["layers"] = losses.hidden_state_mse(pairs)
            loss = loss + s.layer_weight * terms["layers"]
        if self.attention_map:
            pairs = [
                (student_hidden[i], _pool_to(teacher_hidden[j], student_hidden[i].shape[2:]))
                for i, j in self.attention_map
            ]
            terms["attention"] = losses.attention_transfer(pairs)
            loss = loss + s.attention_weight * terms["attention"]
        terms["loss"] = loss
        return terms
