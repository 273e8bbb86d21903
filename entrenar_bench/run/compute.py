"""A run's compute, estimated in FLOPs from parameter counts and token counts (Kaplan et al. 2020, §2.1):

    student    = 6 · N_s · D                 forward (2·N) and backward (4·N) over the D tokens it trained on
    teacher    = 2 · N_t · D                 online: a forward pass over every training batch
               = 2 · N_t · D_store           cached: building the stored outputs of the training rows (D_store
                                             target tokens), once per teacher and data, shared by every run that
                                             reads the same store (each run's record counts it whole)
    generation = 2 · N_s · G                 on-policy: the student sampling its G generated tokens
               = 2 · N_t · G                 sequence-level KD: the teacher sampling the stored sequences (once,
                                             shared like a store)

N is a model's parameters less its input embedding table (a lookup multiplies nothing); an output head tied to
that table still counts once, since its matrix product over the vocabulary is real work. D counts target tokens
(``training/budget.py``): a row of T tokens has T − 1 targets, so the forward over its first position is not
counted; attention's T²-term and the prompt's prefill in generation are left out (small at these lengths).
The held-out evaluations are not training compute and are not counted.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def embedding_parameters(model: nn.Module) -> int:
    """The input embedding table's parameters where the model has one that its output head does not share."""
    get_in = getattr(model, "get_input_embeddings", None)
    embedding = get_in() if callable(get_in) else None
    if embedding is None or not hasattr(embedding, "weight"):
        return 0
    get_out = getattr(model, "get_output_embeddings", None)
    head = get_out() if callable(get_out) else None
    if head is not None and getattr(head, "weight", None) is embedding.weight:
        return 0  # tied: the head's product over the vocabulary uses it
    return embedding.weight.numel()


def non_embedding_parameters(model: nn.Module) -> int:
    """N of the module's formulas."""
    return sum(p.numel() for p in model.parameters()) - embedding_parameters(model)


def run_flops(student: nn.Module, teacher: nn.Module | None, tokens: int, teacher_mode: str | None,
              stored_tokens: int = 0, generated_tokens: int = 0, seq_kd_tokens: int = 0) -> dict[str, Any]:
    """The run's FLOPs by the module's formulas: ``student``, ``teacher``, ``generation`` and their ``total``.
    ``teacher_mode``: ``online``, ``cached`` or None (no teacher); ``stored_tokens``: D_store;
    ``generated_tokens``: the student's on-policy samples; ``seq_kd_tokens``: the teacher's sampled tokens."""
    n_s = non_embedding_parameters(student)
    n_t = non_embedding_parameters(teacher) if teacher is not None else 0
    teacher_tokens = {"online": tokens, "cached": stored_tokens}.get(teacher_mode or "", 0)
    split = {"student": 6.0 * n_s * tokens, "teacher": 2.0 * n_t * teacher_tokens,
             "generation": 2.0 * n_s * generated_tokens + 2.0 * n_t * seq_kd_tokens}
    return {**split, "total": sum(split.values()), "non_embedding_params": {"student": n_s, "teacher": n_t or None},
            "teacher_mode": teacher_mode,
            "formula": "student 6·N_s·D; teacher 2·N_t·D online or 2·N_t·D_store cached; generation 2·N·G "
                       "(N: parameters less the input embedding; D: target tokens)"}
