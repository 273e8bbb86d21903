"""The logit term across two tokenizations (``distill.logit_loss=uld`` or ``gold``): the teacher's next-token
probabilities already aligned to the student's positions (one row per student position, over the teacher's
vocabulary: ``merge_positions``), against the student's softmax at T.

With ``p`` the aligned teacher row and ``q = softmax(z_s / T)`` at each target position (mean over them):

- ``uld``: ``Σ_i |sort↓(p)_i − sort↓(q)_i|`` (``cross_vocab.uld``);
- ``gold``: ``w_matched·JSD_β(p_matched ‖ q_matched) + w_unmatched·ULD(p_rest, q_rest)`` (``cross_vocab.gold``;
  β = ``distill.beta``, the weights ``distill.gold_matched_weight`` / ``gold_unmatched_weight``, null: the matched
  share of the teacher's vocabulary and its complement).

No T² factor: neither is a KL whose gradients shrink as 1/T².

A stored teacher (``teacher_signal/``: :func:`stored_probabilities`) gives the same rows: the exact store exactly; the
top-k store (T = 1 only: the plan refuses another T) as the *spread* rule's dense row, the k stored probabilities at
their ids and the tail mass ``r`` spread evenly, ``r/(V−k)``, on every other id (``distill.top_k_tail`` does not apply:
its ``bucket`` and ``drop`` rules compare the same k ids on both sides, which two vocabularies do not have; the spread
row sums to 1 and sorts after the k entries, so ULD's first k sorted entries are the teacher's own), and the chain
rule's later factors from the stored log-prob of the token read (``targets``: exact, in the top k or not). Its only
approximation is the shape of the tail (measured: docs/language-models.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from entrenar_bench.distill.cross_vocab import gold, uld
from entrenar_bench.distill.losses import TopKTeacher
from entrenar_bench.distill.settings import DistillSettings


@dataclass
class CrossTeacher:
    """The teacher's signal for a student that reads another tokenization: ``probs`` ``(B, T_s, V_t)`` aligned to the
    student's positions (softmax at T, merged groups); ``teacher_ids``/``student_ids``: the tokens both vocabularies
    hold (``cross_vocab.vocabulary_matches``), for ``gold``; ``aligned`` ``(B, T_s)``: the positions that have a
    teacher row (None: all)."""

    probs: torch.Tensor
    teacher_ids: torch.Tensor
    student_ids: torch.Tensor
    aligned: torch.Tensor | None = None


def read_probabilities(probs: torch.Tensor, read: torch.Tensor) -> torch.Tensor:
    """``(B, L)``: ``probs[b, t, read[b, t+1]]``, the probability of the token read next at each row (1 at the last)."""
    return F.pad(probs[:, :-1].gather(-1, read[:, 1:, None])[..., 0], (0, 1), value=1.0)


def stored_probabilities(stored: torch.Tensor | TopKTeacher, read: torch.Tensor, temperature: float
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(probs (B, L, V), read_probs (B, L))`` of stored teacher rows (module docstring): exact logits as the online
    teacher's, ``softmax(z/T)``; a top-k teacher as the spread row and ``exp(targets)``."""
    if isinstance(stored, torch.Tensor):
        probs = torch.softmax(stored.float() / temperature, dim=-1)
        return probs, read_probabilities(probs, read)
    if stored.targets is None:
        raise ValueError("a top-k teacher store without the log-probs of the tokens read (targets) cannot be merged "
                         "across tokenizations: the next build keeps them")
    return stored.logits().exp(), stored.targets.float().exp()


def merge_positions(probs: torch.Tensor, first: torch.Tensor, later: torch.Tensor,
                    read_probs: torch.Tensor) -> torch.Tensor:
    """``(B, G, V)``: ``probs[b, first[g]] · Π_m read_probs[b, later[g, m]]`` (``later`` −1: no factor) —
    ``cross_vocab.merge_groups``' chain rule, batched: ``probs`` ``(B, L, V)`` the teacher's next-token
    probabilities, ``read_probs`` ``(B, L)`` those of the tokens it read (row t predicts token t+1:
    :func:`read_probabilities`), ``first`` ``(G,)`` and ``later`` ``(G, M)`` the rows that predict each student
    position's group, the same for every row, or ``(B, G)`` and ``(B, G, M)`` per row."""
    batch, width = probs.shape[0], probs.shape[-1]
    first, later = first.expand(batch, -1), later.expand(batch, -1, -1)
    rows = probs.gather(1, first[..., None].expand(-1, -1, width))
    factors = read_probs.gather(1, later.clamp_min(0).flatten(1)).view_as(later)
    factors = torch.where(later >= 0, factors.clamp_min(1e-8), torch.ones_like(factors))
    return rows * factors.prod(-1, keepdim=True)


def cross_divergence(settings: DistillSettings, student_logits: torch.Tensor, teacher: CrossTeacher,
                     mask: torch.Tensor) -> torch.Tensor:
    """``uld`` or ``gold`` (module docstring) over the target positions of ``mask``."""
    if not isinstance(teacher, CrossTeacher):
        raise ValueError(f"distill.logit_loss={settings.logit_loss} needs a teacher aligned to another tokenization "
                         "(a task whose data gives the student a tokenizer of its own)")
    keep = mask.bool() if teacher.aligned is None else mask.bool() & teacher.aligned.to(mask.device)
    q = torch.softmax(student_logits[keep].float() / settings.effective_temperature, dim=-1)
    p = teacher.probs[keep].float()
    if settings.logit_loss == "uld":
        return uld(p, q)
    return gold(p, q, teacher.teacher_ids.to(p.device), teacher.student_ids.to(p.device), settings.beta,
                settings.gold_matched_weight, settings.gold_unmatched_weight)["loss"]
