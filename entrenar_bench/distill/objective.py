"""The distillation objective: weighted loss terms, one formula for every task.

``loss = (1−α)·CE + α·logit_term + layer_weight·layers + attention_weight·attention``

``CE`` is the cross-entropy with the targets; ``logit_term`` the divergence ``distill.logit_loss`` between the
student's and the teacher's logits (``losses.py``: kl, reverse_kl, jsd, skew_kl, skew_reverse_kl, tvd, mse) or
absent (``none``). Per example (``mask`` None, logits (B, V)) or per token ((B, T, V) with a (B, T) mask of
target positions, each term a mean over them). ``layers`` and ``attention`` are the task's feature terms
(``features.py``), whose projections train with the student. Every strategy in ``conf/distill`` is a setting
of these weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from entrenar_bench.distill import losses
from entrenar_bench.distill.cross_term import cross_divergence
from entrenar_bench.distill.padded_vocab import shared_logits
from entrenar_bench.distill.settings import CROSS_LOSSES, DistillSettings


@dataclass
class ModelOutputs:
    """Logits, and the hidden states / attention maps a strategy asked for (empty otherwise)."""

    logits: Any
    hidden: Sequence[Any] = ()
    attentions: Sequence[Any] = ()


def logit_term(settings: DistillSettings, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
               mask: torch.Tensor | None, shared_ids: int | None = None) -> torch.Tensor:
    """The divergence ``settings.logit_loss``: per token under ``mask``, or per example (each example one token);
    ``uld``/``gold`` against a teacher aligned to another tokenization (``cross_term.py``); ``shared_ids``: padded
    vocabularies compared over their first ``shared_ids`` ids (``padded_vocab.py``)."""
    if settings.logit_loss in CROSS_LOSSES:
        return cross_divergence(settings, student_logits, teacher_logits, mask)
    if shared_ids is not None:
        student_logits, teacher_logits = shared_logits(student_logits, teacher_logits, shared_ids)
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
        self.shared_ids: int | None = None  # padded vocabularies: the ids both models and the tokenizer hold

    def forward(self, student, targets: torch.Tensor, mask: torch.Tensor | None, teacher=None,
                sampled: bool = False) -> dict[str, torch.Tensor]:
        """Every term and their weighted sum under ``"loss"``; ``student``/``teacher``: model outputs
        (``.logits``, ``.hidden``, ``.attentions``). ``sampled``: the student's own continuations (on-policy), whose
        tokens are no ground truth: the loss is the logit term alone, on the generated positions (GKD)."""
        s = self.settings
        if sampled:
            terms = {"kd": logit_term(s, student.logits, teacher.logits, mask, self.shared_ids)}
            return {**terms, "loss": terms["kd"]}
        terms = {"ce": losses.cross_entropy(student.logits, targets, mask)}
        loss = terms["ce"]
        if s.logit_loss != "none" and s.alpha > 0:
            terms["kd"] = logit_term(s, student.logits, teacher.logits, mask, self.shared_ids)
            loss = (1 - s.alpha) * terms["ce"] + s.alpha * terms["kd"]
        if self.layers is not None:
            terms["layers"] = self.layers(student, teacher, mask)
            loss = loss + s.layer_weight * terms["layers"]
        if self.attention is not None:
            terms["attention"] = self.attention(student, teacher, mask)
            loss = loss + s.attention_weight * terms["attention"]
        terms["loss"] = loss
        return terms
