"""Padded vocabularies: a teacher and a student that read one tokenizer but whose embedding tables have different
numbers of rows (Qwen2.5: 151,936 against 152,064, rows padded to a multiple). Rows past the tokenizer are
never read nor targets.

Both logits are compared over the shared ids ``0 … n−1``, ``n = min(V_t, V_s, tokenizer size)``: each side's
softmax renormalised over them (the divergence of the two conditionals given the next token is a real one).
What that drops is measured on the teacher: ``unshared mass = mean over target positions of Σ_{i ≥ n} p_i``,
``p = softmax(z_teacher)`` at T = 1 over all its rows.
"""

from __future__ import annotations

import torch


def shared_width(student_width: int, teacher_width: int, limit: int | None = None) -> int:
    """``min(V_s, V_t, limit)``: the ids both logits hold (and the tokenizer has, where ``limit`` is given)."""
    return min(student_width, teacher_width, *(() if limit is None else (limit,)))


def shared_logits(student: torch.Tensor, teacher: torch.Tensor, limit: int | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Both logits cut to their first :func:`shared_width` ids where their widths differ; unchanged where they are
    equal (one vocabulary, padded alike: compared over every row, as before), and where the teacher is a stored
    top-k signal rather than logits."""
    if not isinstance(teacher, torch.Tensor) or student.shape[-1] == teacher.shape[-1]:
        return student, teacher
    width = shared_width(student.shape[-1], teacher.shape[-1], limit)
    return student[..., :width], teacher[..., :width]


def unshared_mass(teacher_logits: torch.Tensor, width: int, mask: torch.Tensor | None = None) -> float:
    """The teacher's mean probability (T = 1) on ids ``>= width``, over the positions of ``mask`` (all if None)."""
    probs = torch.softmax(teacher_logits.float(), dim=-1)[..., width:].sum(-1)
    if mask is not None:
        probs = probs[mask.bool()]
    return float(probs.mean()) if probs.numel() else 0.0


def padded_rows(model: torch.nn.Module, vocab_size: int) -> list[int] | None:
    """The ids of ``model``'s embedding rows past the data's ``vocab_size`` ids (never sampled: generation
    suppresses them), None where it has none."""
    rows = getattr(getattr(model, "config", None), "vocab_size", None)
    return list(range(vocab_size, rows)) if rows is not None and rows > vocab_size else None
