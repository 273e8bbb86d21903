"""Distillation between vocabularies that differ: ULD and GOLD's hybrid, on positions aligned by byte offsets
(``data/alignment.py``).

With ``p`` the teacher's and ``q`` the student's next-token probabilities at one aligned position (each softmax
at temperature T, over its own vocabulary):

- ULD (Boizard et al. 2024, Universal Logit Distillation): ``Σ_i |p_(i) − q_(i)|``, the sorted probability
  vectors (descending) compared entry by entry, the shorter padded with zeros: the Wasserstein-1 distance between
  the two distributions under a cost that ignores token identity. Mean over aligned positions.
- GOLD's hybrid (TRL ``trl/experimental/gold``): on the tokens whose strings both vocabularies hold, the
  generalised JSD of the matched probabilities, ``β·KL(p‖m) + (1−β)·KL(q‖m)``, ``m = β·p + (1−β)·q`` (β = 0 is
  forward KL, β = 1 reverse KL, as in ``losses.jsd``); on the rest, ULD over the unmatched probabilities.
  ``loss = w_matched·JSD + w_unmatched·ULD``; weights None: ``w_matched`` = the share of the teacher's vocabulary
  that is matched, ``w_unmatched = 1 − w_matched``.
- A group that merges several tokens on one side (``"hel" + "lo"`` against ``"hello"``) is predicted by its
  first position: that distribution times the probability of each later token of the group actually read
  (the chain rule for the sequence read; unnormalised for the other tokens, as GOLD does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

EPS = 1e-8  # the floor of a merged group's later-token probabilities


def merge_groups(probs: torch.Tensor, groups: Sequence[Sequence[int]], token_ids: Sequence[int]) -> torch.Tensor:
    """``(G, V)``: each group's distribution, ``probs[g[0]] · Π_{j ∈ g[1:]} probs[j, token_ids[j]]``; ``probs``
    ``(L, V)`` the positions' next-token probabilities, ``token_ids`` the tokens read at them."""
    rows = []
    for group in groups:
        row = probs[group[0]]
        for j in group[1:]:
            row = row * probs[j, token_ids[j]].clamp_min(EPS)
        rows.append(row)
    return torch.stack(rows) if rows else probs.new_zeros((0, probs.shape[-1]))


def _pad_to(x: torch.Tensor, width: int) -> torch.Tensor:
    return F.pad(x, (0, width - x.shape[-1])) if x.shape[-1] < width else x


def sorted_l1(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """Per position ``Σ_i |sort↓(p)_i − sort↓(q)_i|`` over ``(N, V_t)`` and ``(N, V_s)`` probabilities: ``(N,)``."""
    width = max(teacher.shape[-1], student.shape[-1])
    p = _pad_to(teacher.sort(dim=-1, descending=True).values, width)
    q = _pad_to(student.sort(dim=-1, descending=True).values, width)
    return (p - q).abs().sum(-1)


def uld(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """ULD: the mean over aligned positions of :func:`sorted_l1` (the teacher detached)."""
    if teacher.shape[0] == 0:
        return student.sum() * 0.0
    return sorted_l1(teacher.detach(), student).mean()


def jsd_of_probs(teacher: torch.Tensor, student: torch.Tensor, beta: float) -> torch.Tensor:
    """Per position the generalised JSD of two probability vectors over the same tokens (0·log 0 = 0): ``(N,)``."""
    def kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.where(a > 0, a * (a.clamp_min(1e-38).log() - b.clamp_min(1e-38).log()),
                           torch.zeros_like(a)).sum(-1)

    if beta == 0:
        return kl(teacher, student)
    if beta == 1:
        return kl(student, teacher)
    mix = beta * teacher + (1 - beta) * student
    return beta * kl(teacher, mix) + (1 - beta) * kl(student, mix)


def vocabulary_matches(teacher_vocab: Mapping[str, int], student_vocab: Mapping[str, int]
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """The ids of the token strings both vocabularies hold: (teacher ids, student ids), in teacher-id order."""
    pairs = sorted((t_id, student_vocab[token]) for token, t_id in teacher_vocab.items() if token in student_vocab)
    return (torch.tensor([t for t, _ in pairs], dtype=torch.long),
            torch.tensor([s for _, s in pairs], dtype=torch.long))


def gold(teacher: torch.Tensor, student: torch.Tensor, teacher_ids: torch.Tensor, student_ids: torch.Tensor,
         beta: float = 0.5, matched_weight: float | None = None, unmatched_weight: float | None = None
         ) -> dict[str, torch.Tensor]:
    """GOLD's hybrid over aligned ``(N, V_t)`` and ``(N, V_s)`` probabilities; ``teacher_ids``/``student_ids``: the
    matched tokens (:func:`vocabulary_matches`). Returns ``loss``, ``matched``, ``unmatched`` and
    ``unmatched_mass`` (the teacher's mean probability outside the matched tokens)."""
    teacher = teacher.detach()
    if matched_weight is None:
        matched_weight = len(teacher_ids) / teacher.shape[-1]
        unmatched_weight = 1.0 - matched_weight
    elif unmatched_weight is None:
        unmatched_weight = 1.0 - matched_weight
    t_free = torch.ones(teacher.shape[-1], dtype=torch.bool, device=teacher.device)
    s_free = torch.ones(student.shape[-1], dtype=torch.bool, device=student.device)
    t_free[teacher_ids] = False
    s_free[student_ids] = False
    zero = student.sum() * 0.0
    matched = jsd_of_probs(teacher[:, teacher_ids], student[:, student_ids], beta).mean() \
        if len(teacher_ids) and teacher.shape[0] else zero
    unmatched = sorted_l1(teacher[:, t_free], student[:, s_free]).mean() \
        if t_free.any() and s_free.any() and teacher.shape[0] else zero
    mass = teacher[:, t_free].sum(-1).mean() if teacher.shape[0] else zero.detach()
    return {"loss": matched_weight * matched + unmatched_weight * unmatched, "matched": matched,
            "unmatched": unmatched, "unmatched_mass": mass}
