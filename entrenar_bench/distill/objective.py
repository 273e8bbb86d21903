"""The distillation objective: weighted loss terms, one formula for every task.

``loss = (1−α)·CE + α·logit_term + layer_weight·layers + attention_weight·attention``

``CE`` is the cross-entropy with the targets; ``logit_term`` the divergence ``distill.logit_loss`` between the
student's and the teacher's logits (``losses.py``: kl, reverse_kl, jsd, skew_kl, skew_reverse_kl, tvd, mse) or
absent (``none``). Per example (``mask`` None, logits (B, V)) or per token ((B, T, V) with a (B, T) mask of
target positions, each term a mean over them). ``layers`` and ``attention`` are the task's feature terms
(``features.py``), whose projections train with the student. Every strategy in ``conf/distill`` is a setting
of these weights. An on-policy batch (GKD) keeps them: its logit term is measured on the student's own
continuations of the batch's prefixes, its CE on the batch's real tokens (``forward``'s ``sampled``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from entrenar_bench.distill import losses
from entrenar_bench.distill.settings import DistillSettings


@dataclass
class ModelOutputs:
    """Logits, and the hidden states / attention maps a strategy asked for (empty otherwise)."""

    logits: Any
    hidden: Sequence[Any] = ()
    attentions: Sequence[Any] = ()


def logit_term(settings: DistillSettings, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
               mask: torch.Tensor | None) -> torch.Tensor:
    """The divergence ``settings.logit_loss``: per token under ``mask``, or per example (each example one token)."""
    if mask is None:
        return losses.example_divergence(settings, student_logits, teacher_logits)
    return losses.settings_divergence(settings, student_logits, teacher_logits, mask)


class DistillationObjective(nn.Module):
    """Builds the loss from settings and the task's feature terms (which own the projections)."""

    def __init__(self, settings: DistillSettings, layers: nn.Module | None = None, attention: nn.Module | None = None):
        super().__init__()
        self.settings = settings
        self.layers = layers
        self.attention = attention
        terms = [t for t in (layers, attention) if t is not None]
        self.needs_hidden = any(t.needs_hidden for t in terms)
        self.needs_attentions = any(t.needs_attentions for t in terms)

    def forward(self, student, targets: torch.Tensor, mask: torch.Tensor | None, teacher=None,
                sampled: tuple[Any, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """Every term and their weighted sum under ``"loss"``; ``student``/``teacher``: model outputs
        (``.logits``, ``.hidden``, ``.attentions``) on the batch whose ``targets``/``mask`` are given.

        ``sampled``: an on-policy batch (GKD), ``(student outputs, generated-token mask)`` on the student's own
        continuations of the batch's prefixes, on which ``teacher`` ran. The weights stay those of every other
        batch, only the divergence's data changes: ``loss = (1−α)·CE(real tokens) + α·D(p_T ‖ q_S)`` over the
        generated positions; the student's sampled tokens are no ground truth, so CE stays on the batch's real
        tokens (``student`` None: CE is not computed, for α = 1, where its weight is 0 — GKD's loss exactly)."""
        s = self.settings
        if sampled is not None and (self.layers is not None or self.attention is not None):
            raise ValueError("on-policy batches take no layer matching or attention transfer")
        divergence_on, divergence_mask = sampled if sampled is not None else (student, mask)
        terms = {} if student is None else {"ce": losses.cross_entropy(student.logits, targets, mask)}
        loss = terms.get("ce")
        if s.logit_loss != "none" and s.alpha > 0:
            terms["kd"] = logit_term(s, divergence_on.logits, teacher.logits, divergence_mask)
            loss = s.alpha * terms["kd"] if loss is None else (1 - s.alpha) * terms["ce"] + s.alpha * terms["kd"]
        if self.layers is not None:
            terms["layers"] = self.layers(student, teacher, mask)
            loss = loss + s.layer_weight * terms["layers"]
        if self.attention is not None:
            terms["attention"] = self.attention(student, teacher, mask)
            loss = loss + s.attention_weight * terms["attention"]
        terms["loss"] = loss
        return terms
