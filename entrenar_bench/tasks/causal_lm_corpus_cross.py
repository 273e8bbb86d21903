"""A causal language model that reads a corpus through its own tokenizer, distilled from a teacher that reads it
through another (``data.student_tokenizer``; ``data/corpus_cross.py``): ``causal_lm_cross``'s task with the
alignment per row.

Each batch carries, per student position, the teacher rows whose merged probabilities predict its next token and
whether it has any (``aligned``): ``uld`` and ``gold`` are taken over the aligned target positions only, the
cross-entropy over every target.

The teacher's signal is stored (``distill.teacher_outputs=cached``, the default) or computed online. Its rows are
exactly the plain corpus blocks, so the store is the plain run's (``teacher_signal/plan.py``: keyed by the teacher
and the data config as the plain run has it) and serves every student tokenizer: a run reads it and aligns it per
batch (``cross_term.stored_probabilities``), with no teacher forward pass. The alignment is not stored: it is
derived from the teacher's tokenizer at setup (``data/corpus_cross.py``), which gives exactly the stored rows' ids
(the store's key covers the tokenizer's digest, and the offsets' encoding is checked against the ids) in one pass
of the fast tokenizer over the corpus (1.1 s of CPU for the fortunes' 188,873 teacher tokens).

Held-out metrics are ``causal_lm``'s in the student's own tokens plus ``bits_per_byte`` (the cross-entropy in bits
summed over the target tokens over the bytes they cover, the end token one byte), which compares tokenizations.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torchmetrics import MeanMetric, MetricCollection

from entrenar_bench.distill import losses
from entrenar_bench.distill.cross_term import CrossTeacher, merge_positions
from entrenar_bench.tasks.base import MetricSpec, register
from entrenar_bench.tasks.causal_lm import next_token_targets
from entrenar_bench.tasks.causal_lm_cross import CrossBatch, CrossTokenizerTask


@dataclass
class CorpusCrossBatch(CrossBatch):
    """Also each position's teacher rows (``first``, ``later``), whether it has any (``aligned``) and the bytes of the
    token it predicts (``target_bytes``)."""

    first: Any = None
    later: Any = None
    aligned: Any = None
    target_bytes: Any = None


@register
class CorpusCrossTask(CrossTokenizerTask):
    name = "causal_lm_corpus_cross"
    recorded_metrics = (*CrossTokenizerTask.recorded_metrics, MetricSpec("bits_per_byte", lower_is_better=True))

    def batch(self, batch: Sequence[Any]) -> CorpusCrossBatch:
        input_ids, mask, index, teacher_ids, first, later, aligned, widths = batch
        targets, target_mask = next_token_targets(input_ids, mask)
        return CorpusCrossBatch(input_ids, targets, target_mask, index, teacher_ids, first, later, aligned,
                                torch.roll(widths, -1, dims=1))

    def can_store_train(self) -> bool:
        return True

    def stored_splits(self, cached: bool) -> tuple[str, ...]:
        return ("train",) if cached else ()

    def aligned(self, probs: torch.Tensor, read_probs: torch.Tensor, batch: CorpusCrossBatch) -> CrossTeacher:
        device = probs.device
        rows = merge_positions(probs, batch.first.to(device), batch.later.to(device), read_probs)
        return CrossTeacher(rows, self.teacher_ids, self.student_ids, batch.aligned.to(device))

    def make_metrics(self, with_teacher: bool) -> MetricCollection:
        metrics = super().make_metrics(with_teacher)
        metrics.add_metrics({"bits_per_byte": MeanMetric()})
        return metrics

    def update_metrics(self, metrics: MetricCollection, logits: torch.Tensor, batch: CorpusCrossBatch,
                       teacher_logits=None) -> None:
        """Also ``bits_per_byte``: Σ CE / ln 2 over Σ bytes, as a mean weighted by the batch's bytes."""
        super().update_metrics(metrics, logits, batch, teacher_logits)
        count = batch.mask.sum()
        nbytes = (batch.target_bytes * batch.mask).sum().clamp(min=1)
        bits = losses.cross_entropy(logits, batch.targets, batch.mask) * count / math.log(2)
        metrics["bits_per_byte"].update(bits / nbytes, nbytes.float())

    def alignment(self) -> dict[str, Any]:
        """The two vocabularies, the tokens they share, the share of the student's training target positions that
        are aligned, and the test split's bytes per target token on each side (a teacher's cross-entropy ``L`` in
        nats is ``L / (ln 2 · bytes per target)`` bits per byte)."""
        data = self.datamodule
        return {"student_tokenizer": data.student_tokenizer, "student_tokenizer_dir": str(data.student_tokenizer_dir),
                "student_vocabulary": data.vocab_size, "teacher_vocabulary": data.teacher_view.vocab_size,
                "matched_tokens": len(self.teacher_ids), "aligned_fraction": data.aligned_fraction,
                "bytes_per_target": data.bytes_per_target["test"]}
