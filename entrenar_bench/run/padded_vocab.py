"""A teacher and a student whose embedding tables differ in size (one tokenizer, rows padded differently): the ids
they share, and the teacher's mass beyond them measured before training (``distill/padded_vocab.py``), recorded as
``padded_vocabulary`` in ``result.json`` and refused above ``distill.max_unshared_mass`` (one line naming it).

Measured on the first batch of the student's training rows (``data.batch_size`` rows in index order, every
position: no random draw, so the run's shuffling is what it would be otherwise).
"""

from __future__ import annotations

from typing import Any

import torch

from entrenar_bench.distill.padded_vocab import shared_width, unshared_mass
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.errors import ConfigError


def embedding_rows(model: torch.nn.Module) -> int | None:
    """The number of token ids ``model``'s logits cover (its config's ``vocab_size``), None for other models."""
    return getattr(getattr(model, "config", None), "vocab_size", None)


def padded_vocabulary(settings: DistillSettings, task: Any, student: torch.nn.Module, teacher: torch.nn.Module | None,
                      batch_rows: int) -> dict[str, Any] | None:
    """``{teacher_rows, student_rows, shared_ids, unshared_mass}`` where the two logits differ in width, else None;
    ConfigError where the teacher's mass beyond the shared ids is above ``settings.max_unshared_mass``. None too where
    the student reads a tokenization of its own (two vocabularies, not one padded twice)."""
    if task.teacher_task() is not task:
        return None
    rows_t, rows_s = (embedding_rows(teacher), embedding_rows(student)) if teacher is not None else (None, None)
    if rows_t is None or rows_s is None or rows_t == rows_s:
        return None
    shared = shared_width(rows_s, rows_t, task.vocab_size)
    inputs = task.split_inputs("train")[:batch_rows]
    device = next(teacher.parameters()).device
    with torch.no_grad():
        logits = task.forward(teacher, inputs.to(device)).logits
    mass = unshared_mass(logits, shared)
    if mass > settings.max_unshared_mass:
        raise ConfigError(f"the teacher puts {mass:.4g} of its probability on ids {shared}..{rows_t - 1}, beyond the "
                          f"{shared} ids it shares with the student ({rows_s} rows) and the data's tokenizer, above "
                          f"distill.max_unshared_mass={settings.max_unshared_mass}")
    return {"teacher_rows": rows_t, "student_rows": rows_s, "shared_ids": shared, "unshared_mass": mass}
