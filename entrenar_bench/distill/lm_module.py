"""The LightningModule that distils a causal language model, token by token.

It is the image ``DistillationModule`` (optimiser, schedule, frozen teacher, failure on a non-finite
loss) with a token batch ``(input_ids, mask, index)`` and the token objective. The teacher's logits
come from its stored outputs (``teacher_targets["train"]``, rows by ``index``) when given, else from
the teacher run on the batch; hidden states and attentions always come from running it.

Held-out metrics, token means over the target mask: ``accuracy`` (next-token top-1), ``loss``
(cross-entropy), ``perplexity = exp(loss)``; with a teacher, ``teacher_kl = KL(p_teacher ‖ q_student)``
at T = 1; where the data's true distribution is known, ``truth_kl = KL(P ‖ q_student)`` and
``bayes_accuracy``, the top-1 accuracy of ``argmax P`` (the ceiling).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torchmetrics import MeanMetric, MetricCollection

from entrenar_bench.distill import losses
from entrenar_bench.distill.lm_objective import TokenDistillationObjective, next_token_targets, token_cross_entropy
from entrenar_bench.distill.module import DistillationModule
from entrenar_bench.distill.teacher_targets import TeacherTargets


def _outputs(model: nn.Module, input_ids: torch.Tensor, hidden: bool, attentions: bool):
    return model(input_ids=input_ids, output_hidden_states=hidden, output_attentions=attentions, use_cache=False)


class TokenDistillationModule(DistillationModule):
    """Student causal LM + token objective; ``teacher_targets``: stored teacher outputs per split
    (``train`` stands in for the teacher in training; ``val``/``test`` give the held-out teacher KL);
    ``reference``: the data's true next-token distribution, (B, L) ids -> (B, L, V), or None."""

    def __init__(
        self,
        student: nn.Module,
        objective: TokenDistillationObjective,
        teacher: nn.Module | None = None,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
        teacher_targets: dict[str, TeacherTargets] | None = None,
        reference: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        self.teacher_targets = dict(teacher_targets or {})
        self.reference = reference
        self.with_teacher = teacher is not None or bool(self.teacher_targets)
        super().__init__(student, objective, num_classes=0, teacher=teacher, lr=lr, weight_decay=weight_decay)
        self.needs_attentions = bool(objective.attention_map)
        self.train_tokens = 0

    def make_metrics(self) -> MetricCollection:
        names = ["accuracy", "loss"]
        names += ["teacher_kl"] * self.with_teacher + ["truth_kl", "bayes_accuracy"] * (self.reference is not None)
        return MetricCollection({name: MeanMetric() for name in names})

    def on_fit_start(self) -> None:
        self.teacher_targets = {split: t.to(self.device) for split, t in self.teacher_targets.items()}

    def _teacher_logits(self, split: str, input_ids: torch.Tensor, index: torch.Tensor) -> torch.Tensor | None:
        if split in self.teacher_targets:
            return self.teacher_targets[split].logits(index)
        if self.teacher is None:
            return None
        with torch.no_grad():
            return _outputs(self.teacher, input_ids, False, False).logits

    def batch_loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        input_ids, mask, index = batch
        targets, target_mask = next_token_targets(input_ids, mask)
        self.train_tokens += input_ids.numel()
        student = _outputs(self.student, input_ids, bool(self.objective.layer_map), self.needs_attentions)
        teacher_hidden, teacher_attentions = (), ()
        if self.needs_hidden:
            with torch.no_grad():
                teacher = _outputs(self.teacher, input_ids, bool(self.objective.layer_map), self.needs_attentions)
            teacher_logits, teacher_hidden, teacher_attentions = teacher.logits, teacher.hidden_states, teacher.attentions
        else:
            teacher_logits = self._teacher_logits("train", input_ids, index)
        terms = self.objective(
            student.logits, targets, target_mask, teacher_logits,
            (student.hidden_states or ())[1:], (teacher_hidden or ())[1:], student.attentions or (), teacher_attentions or (),
        )
        return terms["loss"]

    def update_metrics(self, batch: tuple[torch.Tensor, ...], metrics: MetricCollection, split: str) -> None:
        input_ids, mask, index = batch
        targets, target_mask = next_token_targets(input_ids, mask)
        logits = self.student(input_ids=input_ids, use_cache=False).logits
        correct, count = losses.token_top1_matches(logits, targets, target_mask)
        weight = count.float()
        metrics["accuracy"].update(correct / count.clamp(min=1), weight)
        metrics["loss"].update(token_cross_entropy(logits, targets, target_mask), weight)
        if self.with_teacher:
            teacher_logits = self._teacher_logits(split, input_ids, index)
            metrics["teacher_kl"].update(losses.forward_kl(logits, teacher_logits, target_mask), weight)
        if self.reference is not None:
            truth = self.reference(input_ids)
            metrics["truth_kl"].update(losses.kl_from_probs(truth, logits, target_mask), weight)
            bayes, _ = losses.token_top1_matches(truth, targets, target_mask)
            metrics["bayes_accuracy"].update(bayes / count.clamp(min=1), weight)

    def split_results(self, metrics: MetricCollection) -> dict[str, torch.Tensor]:
        values = metrics.compute()
        values["perplexity"] = values["loss"].exp()
        return values
