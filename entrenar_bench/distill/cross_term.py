"""The logit term across two tokenizations (``distill.logit_loss=uld`` or ``gold``): the teacher's next-token
probabilities already aligned to the student's positions (one row per student position, over the teacher's
vocabulary: ``merge_positions``), against the student's softmax at T.

With ``p`` the aligned teacher row and ``q = softmax(z_s / T)`` at each target position (mean over them):

- ``uld``: ``Σ_i |sort↓(p)_i − sort↓(q)_i|`` (``cross_vocab.uld``);
- ``gold``: ``w_matched·JSD_β(p_matched ‖ q_matched) + w_unmatched·ULD(p_rest, q_rest)`` (``cross_vocab.gold``;
  β = ``distill.beta``, the weights ``distill.gold_matched_weight`` / ``gold_unmatched_weight``, null: the matched
  share of the teacher's vocabulary and its complement).

No T² factor: neither is a KL whose gradients shrink as 1/T².
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from entrenar_bench.distill.cross_vocab import gold, uld
from entrenar_bench.distill.settings import DistillSettings


@dataclass
class CrossTeacher:
    """The teacher's signal for a student that reads another tokenization: ``probs`` ``(B, T_s, V_t)`` aligned to the
    student's positions (softmax at T, merged groups); ``teacher_ids``/``student_ids``: the tokens both vocabularies
    hold (``cross_vocab.vocabulary_matches``), for ``gold``."""

    probs: torch.Tensor
    teacher_ids: torch.Tensor
    student_ids: torch.Tensor


def merge_positions(probs: torch.Tensor, first: torch.Tensor, later: torch.Tensor, read: torch.Tensor) -> torch.Tensor:
    """``(B, G, V)``: ``probs[b, first[g]] · Π_m probs[b, later[g, m], read[b, later[g, m] + 1]]`` (``later`` −1:
    no factor) — ``cross_vocab.merge_groups``' chain rule, batched: ``probs`` ``(B, L, V)`` the teacher's
    next-token probabilities, ``read`` ``(B, L)`` the tokens it read (row t predicts token t+1), ``first`` ``(G,)``
    and ``later`` ``(G, M)`` the rows that predict each student position's group."""
    rows = probs[:, first]
    valid = later >= 0
    at = later.clamp_min(0)
    nxt = read[:, (at + 1).clamp_max(read.shape[1] - 1)]  # (B, G, M)
    factors = probs[:, at].gather(-1, nxt[..., None])[..., 0]  # (B, G, M)
    factors = torch.where(valid, factors.clamp_min(1e-8), torch.ones_like(factors))
    return rows * factors.prod(-1, keepdim=True)


def cross_divergence(settings: DistillSettings, student_logits: torch.Tensor, teacher: CrossTeacher,
                     mask: torch.Tensor) -> torch.Tensor:
    """``uld`` or ``gold`` (module docstring) over the target positions of ``mask``."""
    if not isinstance(teacher, CrossTeacher):
        raise ValueError(f"distill.logit_loss={settings.logit_loss} needs a teacher aligned to another tokenization "
                         "(a task whose data gives the student a tokenizer of its own)")
    keep = mask.bool()
    q = torch.softmax(student_logits[keep].float() / settings.effective_temperature, dim=-1)
    p = teacher.probs[keep].float()
    if settings.logit_loss == "uld":
        return uld(p, q)
    return gold(p, q, teacher.teacher_ids.to(p.device), teacher.student_ids.to(p.device), settings.beta,
                settings.gold_matched_weight, settings.gold_unmatched_weight)["loss"]
