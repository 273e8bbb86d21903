"""Classification of images or signals: one target per example, per-example logits (B, V).

Models take ``input_shape`` and ``num_classes`` (``models/networks.py``); strategies that match hidden states
need ``forward_with_hidden(x) -> (logits, [hidden states])``. Held-out metrics: top-1 ``accuracy`` (the primary
one, higher is better) and cross-entropy ``loss``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from entrenar_bench.data.arrays import random_shift
from entrenar_bench.distill.features import MapAttentionTransfer, MapLayerMatching
from entrenar_bench.errors import ConfigError
from entrenar_bench.distill.objective import ModelOutputs
from entrenar_bench.tasks.base import Batch, MetricSpec, Task, register

ADAPTABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def hidden_probe(model: nn.Module, input_shape: tuple[int, ...], role: str) -> list[torch.Tensor]:
    """The hidden states of ``model`` on two blank inputs: their number and shapes size the feature terms."""
    if not hasattr(model, "forward_with_hidden"):  # a capability of the user's model, which this task needs
        raise ConfigError(f"the {role} model {type(model).__name__} has no forward_with_hidden(); "
                          "this strategy needs it")
    was_training = model.training
    with torch.no_grad():
        _, hidden = model.eval().forward_with_hidden(torch.zeros(2, *input_shape))
    model.train(was_training)
    return hidden


@register
class ClassificationTask(Task):
    name = "classification"
    primary_metric = MetricSpec("accuracy", lower_is_better=False)
    recorded_metrics = (MetricSpec("accuracy"), MetricSpec("loss", lower_is_better=True))
    store_chunk = 1024
    holds_teacher_features = True

    def batch(self, batch: Sequence[Any]) -> Batch:
        return Batch(batch[0], batch[1], None, batch[2] if len(batch) > 2 else None)

    def augmentation(self, augment_shift: int) -> Callable[[torch.Tensor], torch.Tensor] | None:
        return functools.partial(random_shift, max_shift=augment_shift) if augment_shift else None

    def can_store_train(self) -> bool:
        return hasattr(self.datamodule, "indexed_train_dataloader")  # a user's data module may not index its rows

    def split_inputs(self, split: str) -> torch.Tensor:
        if split != "train":
            raise ValueError(f"classification stores the teacher's outputs of the training split only, not {split!r}")
        return self.datamodule.train_inputs()

    @property
    def vocab_size(self) -> int:
        return self.datamodule.num_classes

    def train_loader(self, indexed: bool) -> Any:
        return self.datamodule.indexed_train_dataloader() if indexed else self.datamodule.train_dataloader()

    def forward(self, model: nn.Module, inputs: torch.Tensor, hidden: bool = False,
                attentions: bool = False) -> ModelOutputs:
        if hidden or attentions:  # attention transfer here works on the feature maps
            logits, states = model.forward_with_hidden(inputs)
            return ModelOutputs(logits, states)
        return ModelOutputs(model(inputs))

    def feature_terms(self, names: Sequence[str], student: nn.Module, teacher: nn.Module | None):
        shape = self.datamodule.input_shape
        probes = hidden_probe(student, shape, "student"), hidden_probe(teacher, shape, "teacher")
        terms = {"layers": MapLayerMatching, "attention": MapAttentionTransfer}
        return {name: terms[name](*probes) for name in names}

    def lora_targets(self, model: nn.Module) -> list[str]:
        return [name for name, module in model.named_modules() if isinstance(module, ADAPTABLE)]

    def make_metrics(self, with_teacher: bool) -> MetricCollection:
        return MetricCollection({"accuracy": MulticlassAccuracy(num_classes=self.datamodule.num_classes,
                                                                average="micro"),
                                 "loss": MeanMetric()})

    def update_metrics(self, metrics: MetricCollection, logits: torch.Tensor, batch: Batch,
                       teacher_logits=None) -> None:
        metrics["accuracy"].update(logits, batch.targets)
        metrics["loss"].update(nn.functional.cross_entropy(logits, batch.targets, reduction="none"))
