"""The Task protocol and its registry.

What a task says (everything else about a run is shared):

- the data: how a batch splits into inputs, targets, a target mask and row indices (:meth:`Task.batch`),
  training-time augmentation, the inputs whose teacher outputs can be stored;
- the models: one forward that returns logits and, where a strategy asks, hidden states and attention
  maps (:class:`ModelOutputs`); the layer-matching and attention-transfer terms that fit those
  (``distill/feature_terms.py`` chooses them); LoRA's
  default targets;
- the logit term's shape: per example (``mask`` None, logits ``(B, V)``) or per token (``(B, T, V)`` with a
  ``(B, T)`` mask of target positions);
- the metrics of a held-out split, each declared with its direction (:data:`Task.recorded_metrics`; their
  ``val_`` twins share it), and the primary one (:data:`Task.primary_metric`).

Built-in tasks are named here and imported only when a run asks for them (a language-model run need not load
the image code, nor an image run transformers); :func:`register` adds any other.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from entrenar_bench.errors import ConfigError

if TYPE_CHECKING:  # the protocol itself loads nothing heavy: aggregation reads MetricSpec without torch
    from entrenar_bench.distill.objective import ModelOutputs

BUILT_IN = {
    "classification": "entrenar_bench.tasks.classification:ClassificationTask",
    "causal_lm": "entrenar_bench.tasks.causal_lm:CausalLMTask",
    "causal_lm_cross": "entrenar_bench.tasks.causal_lm_cross:CrossTokenizerTask",
    "causal_lm_corpus_cross": "entrenar_bench.tasks.causal_lm_corpus_cross:CorpusCrossTask",
}
_REGISTERED: dict[str, type[Task]] = {}


@dataclass(frozen=True)
class MetricSpec:
    """A metric a task records and its direction (aggregate/metrics.py's ``Metric`` is how reports rank it)."""

    name: str
    lower_is_better: bool = False

    def as_record(self) -> dict[str, Any]:
        return {"name": self.name, "lower_is_better": self.lower_is_better}


@dataclass
class Batch:
    """One batch as every task sees it. ``mask`` None: one target per example; else the (B, T) target positions.
    ``index``: each row's position in its split (to read the teacher's stored outputs), or None."""

    inputs: Any
    targets: Any
    mask: Any = None
    index: Any = None


class Task:
    """Base of every task; a subclass sets ``name``, ``primary_metric`` and ``recorded_metrics`` (every test
    metric it may record, with its direction) and implements the methods that raise here. One instance per run:
    ``Task(datamodule)`` after the data module's ``setup``."""

    name: ClassVar[str]
    primary_metric: ClassVar[MetricSpec]
    recorded_metrics: ClassVar[tuple[MetricSpec, ...]] = ()
    store_chunk: ClassVar[int] = 256  # rows per teacher forward pass when its outputs are stored
    evaluates_teacher: ClassVar[bool] = False  # held-out metrics against the teacher (needs its val/test outputs)
    generates: ClassVar[bool] = False  # samples sequences (on-policy distillation, sequence-level KD)
    holds_teacher_features: ClassVar[bool] = False  # the teacher's hidden states over the training rows may be
    # computed once and held in memory (up to distill/module.HELD_FEATURE_BYTES) rather than on every batch

    def __init__(self, datamodule: Any):
        self.datamodule = datamodule

    @classmethod
    def directions(cls) -> dict[str, bool]:
        """``{name: lower_is_better}`` of every metric the task declares (``metric_directions`` in result.json)."""
        return {m.name: m.lower_is_better for m in (*cls.recorded_metrics, cls.primary_metric)}

    # data
    def batch(self, batch: Sequence[Any]) -> Batch:
        raise NotImplementedError

    def augmentation(self, augment_shift: int) -> Callable[[Any], Any] | None:
        """The training-time augmentation of inputs (None: none); it makes stored teacher outputs impossible."""
        return None

    def can_store_train(self) -> bool:
        """Whether the training rows can be looked up by index (so stored teacher outputs can stand in)."""
        return True

    def stored_splits(self, cached: bool) -> tuple[str, ...]:
        """The splits whose teacher outputs are stored: the training inputs when ``cached`` (the store stands in
        for the teacher), and the held-out splits a task evaluates the teacher on."""
        return ("train",) if cached else ()

    def split_inputs(self, split: str) -> Any:
        """A split's inputs in row order (the student's training rows for ``train``)."""
        raise NotImplementedError

    def next_ids(self, split: str) -> Any:
        """The id read next at each stored position of ``split`` (−1: none), whose log-prob a top-k store keeps beside
        its k entries (``shards.Layout.targets``); None where the task reads no tokens."""
        return None

    @property
    def vocab_size(self) -> int:
        """The size of the logits' last axis (classes, or tokens)."""
        raise NotImplementedError

    def positions(self, split: str) -> int:
        """How many positions the teacher store of ``split`` holds (rows × positions a row)."""
        inputs = self.split_inputs(split)
        return len(inputs) * self.positions_per_row(inputs)

    def positions_per_row(self, inputs: Any) -> int:
        return 1

    def train_loader(self, indexed: bool) -> Any:
        """The student's training batches; ``indexed``: with their row index (to read stored teacher outputs)."""
        return self.datamodule.train_dataloader()

    def teacher_task(self) -> Task:
        """The task the teacher trains and is measured on: this one, unless the student reads the data through a
        tokenization of its own (then the teacher's view of the same rows)."""
        return self

    # models
    def forward(self, model: Any, inputs: Any, hidden: bool = False, attentions: bool = False) -> ModelOutputs:
        raise NotImplementedError

    def teacher_forward(self, teacher: Any, batch: Batch, hidden: bool = False,
                        attentions: bool = False) -> ModelOutputs:
        """The teacher's outputs on a training or held-out batch: :meth:`forward` on its inputs, unless the student
        reads another tokenization (then its signal aligned to the student's positions)."""
        return self.forward(teacher, batch.inputs, hidden, attentions)

    def stored_teacher(self, stored: Any, batch: Batch) -> Any:
        """The teacher's stored rows of ``batch`` (logits or a ``TopKTeacher``) as the loss takes them: as they are,
        unless the student reads another tokenization (then aligned to its positions, as :meth:`teacher_forward`)."""
        return stored

    def unmatched_mass(self, teacher: Any, rows: int, stored: Any = None) -> float | None:
        """Across two vocabularies, the teacher's mean probability outside the tokens both hold, on the first ``rows``
        training rows (read from the training store ``stored`` where it stands in); None where teacher and student
        share one vocabulary."""
        return None

    def prepare_models(self, settings: Any, student: Any, teacher: Any | None) -> None:
        """Adjust the models to what a strategy needs of them (e.g. attention maps); nothing by default."""

    def feature_terms(self, names: Sequence[str], student: Any, teacher: Any | None) -> dict[str, Any]:
        """The task's own feature terms ``names`` (``layers``: layer matching, ``attention``: attention transfer;
        ``distill/feature_terms.py`` BUILT_IN) as loss modules fitted to the two models, by name; ValueError when
        the models cannot give what one needs."""
        raise NotImplementedError

    def lora_targets(self, model: Any) -> list[str]:
        """LoRA's default target modules of ``model``."""
        raise NotImplementedError

    # metrics
    def make_metrics(self, with_teacher: bool) -> Any:
        """A torchmetrics ``MetricCollection`` for one held-out split."""
        raise NotImplementedError

    def update_metrics(self, metrics: Any, logits: Any, batch: Batch, teacher_logits: Any | None) -> None:
        raise NotImplementedError

    def results(self, metrics: Any) -> dict[str, Any]:
        """A split's values (``<split>/<name>`` in the log)."""
        return metrics.compute()

    def record(self, train_targets: int, time_s: float) -> dict[str, Any]:
        """Task-specific fields of ``result.json`` (e.g. tokens per second)."""
        return {}

    def tokens_per_row(self, loader: Any) -> float:
        """Mean target tokens of one training row of ``loader`` (a budget in ``train.tokens``): one per example."""
        return 1.0


def register(task: type[Task]) -> type[Task]:
    """Make ``task`` available to data modules whose ``task`` is ``task.name`` (usable as a class decorator)."""
    _REGISTERED[task.name] = task
    return task


def task_class(name: str) -> type[Task]:
    """The task class called ``name``: registered, or built in (imported on first use)."""
    if name not in _REGISTERED and name in BUILT_IN:
        module, _, attr = BUILT_IN[name].partition(":")
        register(getattr(importlib.import_module(module), attr))
    if name not in _REGISTERED:
        known = sorted({*BUILT_IN, *_REGISTERED})
        raise ConfigError(f"data: task {name!r} is not a known task ({', '.join(known)}); register it with "
                          "entrenar_bench.tasks.register")
    return _REGISTERED[name]


def task_for(datamodule: Any) -> Task:
    """The task of a set-up data module (its ``task`` attribute names it)."""
    name = getattr(datamodule, "task", None)
    if not isinstance(name, str):
        raise ConfigError(f"data: {type(datamodule).__name__} names no task "
                          f"(a class attribute task = 'classification', "
                          f"'causal_lm' or a registered one)")
    return task_class(name)(datamodule)
