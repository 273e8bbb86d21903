"""A causal language model distilled from a teacher that reads the same text through another tokenizer
(``distill.logit_loss=uld`` or ``gold``; data such as ``data/markov_cross.py``).

The student's batches and metrics are ``causal_lm``'s over its own tokens. The teacher runs online on its own
tokens of the same rows (here its signal is not stored; ``causal_lm_corpus_cross`` reads a store), and its
next-token probabilities at T are aligned to the student's positions by the data's byte alignment: for the token
student row ``j`` predicts, ``p(t₁ | ·)·Π p(t_m read | ·)`` over the group's teacher tokens
(``cross_term.merge_positions``; GOLD's chain rule for the tokens actually read, unnormalised over the others).
The teacher trains and is measured on its own view of the data (:meth:`teacher_task`); ``teacher_kl`` is not
measured (the two vocabularies differ).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import torch
from torch import nn

from entrenar_bench.data.alignment import aligned_fraction
from entrenar_bench.distill.cross_term import CrossTeacher, merge_positions, read_probabilities, stored_probabilities
from entrenar_bench.distill.cross_vocab import vocabulary_matches
from entrenar_bench.distill.objective import ModelOutputs
from entrenar_bench.tasks.base import Batch, register
from entrenar_bench.tasks.causal_lm import CausalLMTask, next_token_targets


@dataclass
class CrossBatch(Batch):
    """A batch with the teacher's tokens of the same rows."""

    teacher_inputs: Any = None


@register
class CrossTokenizerTask(CausalLMTask):
    name = "causal_lm_cross"
    evaluates_teacher = False

    def __init__(self, datamodule: Any):
        super().__init__(datamodule)
        self._teacher_task = CausalLMTask(datamodule.teacher_view)
        self.teacher_ids, self.student_ids = vocabulary_matches(datamodule.teacher_vocabulary(),
                                                                datamodule.student_vocabulary())
        self.temperature = 1.0

    def teacher_task(self) -> CausalLMTask:
        return self._teacher_task

    def batch(self, batch: Sequence[Any]) -> CrossBatch:
        input_ids, mask, index, teacher_ids = batch
        targets, target_mask = next_token_targets(input_ids, mask)
        return CrossBatch(input_ids, targets, target_mask, index, teacher_ids)

    def can_store_train(self) -> bool:
        return False

    def stored_splits(self, cached: bool) -> tuple[str, ...]:
        return ()

    def prepare_models(self, settings: Any, student: nn.Module, teacher: nn.Module | None) -> None:
        self.temperature = settings.effective_temperature

    def feature_terms(self, names: Sequence[str], student: nn.Module, teacher: nn.Module | None):
        raise ValueError("layer matching and attention transfer pair positions of one tokenization; the teacher "
                         "and the student read two")

    @cached_property
    def fixed_alignment(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(first, later)``: the data's alignment, the same for every row (``markov_cross.alignment``)."""
        return self.datamodule.alignment()

    def aligned(self, probs: torch.Tensor, read_probs: torch.Tensor, batch: CrossBatch) -> CrossTeacher:
        """The teacher's probabilities ``probs`` and those of the tokens it read (``read_probs``), merged per student
        position."""
        first, later = (t.to(probs.device) for t in self.fixed_alignment)
        return CrossTeacher(merge_positions(probs, first, later, read_probs), self.teacher_ids, self.student_ids)

    def teacher_forward(self, teacher: nn.Module, batch: CrossBatch, hidden: bool = False,
                        attentions: bool = False) -> ModelOutputs:
        """The teacher's probabilities at T on its own tokens, aligned to the student's rows (module docstring)."""
        read = batch.teacher_inputs.to(batch.inputs.device)
        probs = torch.softmax(self.forward(teacher, read).logits.float() / self.temperature, dim=-1)
        return ModelOutputs(self.aligned(probs, read_probabilities(probs, read), batch))

    def stored_teacher(self, stored: Any, batch: CrossBatch) -> CrossTeacher:
        """The teacher's stored rows of the batch, aligned as :meth:`teacher_forward`'s
        (``cross_term.stored_probabilities``)."""
        read = batch.teacher_inputs.to(batch.inputs.device)
        return self.aligned(*stored_probabilities(stored, read, self.temperature), batch)

    @torch.no_grad()
    def unmatched_mass(self, teacher: nn.Module, rows: int, stored: Any = None) -> float:
        """The teacher's mean probability (its merged rows at T = 1) outside the tokens both vocabularies hold, over
        the aligned target positions of the first ``rows`` training rows (GOLD's ULD part works on it); from the
        training store ``stored`` where it stands in for the teacher (no forward pass)."""
        device = next(teacher.parameters()).device
        batch = self.batch([t.to(device) for t in self.datamodule.batch_tensors("train", rows)])
        temperature, self.temperature = self.temperature, 1.0
        try:
            cross = self.teacher_forward(teacher, batch).logits if stored is None else \
                self.stored_teacher(stored.read(batch.index.cpu()).to(device), batch)
        finally:
            self.temperature = temperature
        keep = batch.mask if cross.aligned is None else batch.mask & cross.aligned
        free = torch.ones(cross.probs.shape[-1], dtype=torch.bool, device=device)
        free[cross.teacher_ids.to(device)] = False
        return float(cross.probs[keep][:, free].sum(-1).mean()) if keep.any() else 0.0

    def alignment(self) -> dict[str, Any]:
        """The student's token widths and the share of the teacher's tokens in one-to-one groups."""
        data = self.datamodule
        return {"student_widths": list(data.widths), "aligned_fraction": aligned_fraction(data.groups(), data.seq_len)}

    def record(self, train_targets: int, time_s: float) -> dict[str, Any]:
        """Also ``alignment`` (:meth:`alignment`)."""
        return {**super().record(train_targets, time_s), "alignment": self.alignment()}
