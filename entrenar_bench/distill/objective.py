"""The distillation objective: weighted loss terms, one formula for every task.

``loss = (1−α)·CE + α·logit_term + Σ_f weight_f·feature_term_f``

``CE`` is the cross-entropy with the targets; ``logit_term`` the term ``distill.logit_loss`` chooses between the
student's and the teacher's logits (``logit_terms.py``: a registered divergence of ``losses.py`` — kl,
reverse_kl, jsd, skew_kl, skew_reverse_kl, tvd, mse — or a user's function or class by dotted path, each with
the knobs it reads) or absent (``none``: then CE's weight is 1). Per example (``mask`` None, logits (B, V),
each example one token) or per token ((B, T, V) with a (B, T) mask of target positions, each term a mean over
them). The feature terms are those the config chooses (``feature_terms.py``), each ``(name, weight, term)``: the
task's ``layers`` at ``layer_weight`` and ``attention`` at ``attention_weight`` (``features.py``; their projections
train with the student), then a user's ``terms.<name>`` at its ``weight``. Every strategy in ``conf/distill`` is a
setting of these weights. An on-policy batch (GKD)
keeps them: its logit term is measured on the student's own continuations of the batch's prefixes, its CE on
the batch's real tokens (``forward``'s ``sampled``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from entrenar_bench.distill import logit_terms, losses
from entrenar_bench.distill.padded_vocab import shared_logits
from entrenar_bench.distill.settings import DistillSettings


@dataclass
class ModelOutputs:
    """Logits, and the hidden states / attention maps a strategy asked for (empty otherwise)."""

    logits: Any
    hidden: Sequence[Any] = ()
    attentions: Sequence[Any] = ()


class DistillationObjective(nn.Module):
    """Builds the loss from settings: the logit term they choose and the feature terms ``features``, each
    ``(name, weight, term)`` (``feature_terms.build``), summed in order; a term that is a module is a submodule
    under its name (its parameters train with the student)."""

    def __init__(self, settings: DistillSettings, features: Sequence[tuple[str, float, Callable[..., Any]]] = ()):
        super().__init__()
        self.settings = settings
        self.logit = logit_terms.build(settings) if settings.alpha > 0 else None  # a module's parameters train
        self.features = list(features)
        self.needs_hidden = any(getattr(t, "needs_hidden", False) for _, _, t in self.features)
        self.needs_attentions = any(getattr(t, "needs_attentions", False) for _, _, t in self.features)
        self.shared_ids: int | None = None  # padded vocabularies: the ids both models and the tokenizer hold
        for name, _, term in self.features:
            if isinstance(term, nn.Module):
                if hasattr(self, name):
                    raise ValueError(f"a feature term cannot be called {name!r} (an attribute of the objective)")
                self.add_module(name, term)

    def logit_term(self, student_logits: torch.Tensor, teacher_logits: Any, mask: torch.Tensor | None) -> torch.Tensor:
        """The configured logit term: per token under ``mask``, or per example (each example one token); a top-k
        teacher's tail as ``distill.top_k_tail`` says; padded vocabularies compared over their first
        ``shared_ids`` ids (``padded_vocab.py``); ``uld``/``gold`` against a teacher aligned to another tokenization
        (``cross_term.py``)."""
        if self.shared_ids is not None and isinstance(teacher_logits, torch.Tensor):
            student_logits, teacher_logits = shared_logits(student_logits, teacher_logits, self.shared_ids)
        teacher_logits = losses.with_tail_rule(teacher_logits, self.settings.top_k_tail)
        if mask is None:
            student_logits, teacher_logits = losses.one_token(student_logits, teacher_logits)
        return self.logit(student_logits, teacher_logits, mask)

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
        if sampled is not None and self.features:
            raise ValueError("on-policy batches take no feature terms (layer matching, attention transfer, terms)")
        divergence_on, divergence_mask = sampled if sampled is not None else (student, mask)
        terms = {} if student is None else {"ce": losses.cross_entropy(student.logits, targets, mask)}
        loss = terms.get("ce")
        if self.logit is not None:
            terms["kd"] = self.logit_term(divergence_on.logits, teacher.logits, divergence_mask)
            loss = s.alpha * terms["kd"] if loss is None else (1 - s.alpha) * terms["ce"] + s.alpha * terms["kd"]
        for name, weight, term in self.features:
            terms[name] = term(student, teacher, mask)
            loss = loss + weight * terms[name]
        terms["loss"] = loss
        return terms
