"""One run's plan for the teacher's signal, made once from (config, settings, task, augmentation) and handed to the
size check, the memory estimate and the build, so that ``distill.teacher_top_k`` is read in one place.

What it says: the form (``exact`` or ``top<k>``: :func:`stored_top_k`, the vocabulary's default where the setting is
null), the tail rule the training loss applies to a top-k teacher (``distill.top_k_tail``), whether the store
stands in for the teacher in training (``cached``) or the teacher runs every step (``online``), the splits stored
and their positions, the estimated size, and each split's directory under the teacher's cache:
``<teacher>/outputs/<key>/<split>-<form>``. The training split's key covers the whole data config; the held-out
splits' leaves out the keys that change only the student's training rows (the data module's
``teacher_free_keys``, e.g. ``train_subset``), so their stores are reused when only those change. Both cover the
trainer's precision and the SHA-256 of the files the data reads (the data module's ``content_keys``: a corpus
file, a tokenizer directory), so an in-place edit of either builds anew.

The store holds the teacher's view of the data (``task.teacher_task()``): where the student reads the text through
a tokenizer of its own (``data/corpus_cross.py``) the teacher's rows are the plain corpus blocks, and the keys are
made from the data config as the plain run has it (the data module's ``teacher_config``), so one store serves the
plain run and a run for every student tokenizer; the task aligns its rows per batch (``Task.stored_teacher``). A
top-k store of a causal LM also keeps each position's log-prob of the token read next (``targets``:
``Task.next_ids``), which the chain rule of a merged cross-tokenizer group needs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from entrenar_bench.distill.settings import CROSS_LOSSES, DistillSettings
from entrenar_bench.files import config_hash, content_digests
from entrenar_bench.teacher_signal.builder import TeacherStore, precision_context
from entrenar_bench.teacher_signal.reader import StoreReader
from entrenar_bench.teacher_signal.sequences import teacher_sequences
from entrenar_bench.teacher_signal.shards import DamagedStore, StoreMissing
from entrenar_bench.teacher_signal.sizing import (
    check_store_size, check_temperature, describe_size, estimate_bytes, form_name, stored_top_k, tempers_stored_teacher,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TeacherPlan:
    """The teacher's signal one run needs (see the module docstring); :meth:`make` builds it."""

    top_k: int  # 0: exact
    tail: str  # distill.top_k_tail (spread for uld/gold: cross_term.py): what the training loss does with the tail
    cached: bool  # the store stands in for the teacher in training; else it runs every step
    rows: dict[str, int]  # per stored split
    positions: dict[str, int]  # per stored split: rows × positions a row
    vocab_size: int
    keys: dict[str, str]  # per stored split: its directory under <teacher>/outputs
    temperature: float  # the loss's effective temperature where it tempers the teacher, else 1
    limit_gb: float  # limits.max_teacher_store_gb
    precision: str  # the trainer's: the teacher runs under it to fill the store
    chunk_rows: int  # rows per teacher forward pass
    evaluates_teacher: bool  # the task measures teacher_kl on its held-out splits
    targets: bool  # a top-k store keeps the log-prob of the token read next at each position
    data_key: dict[str, Any] = field(repr=False)  # the data config and its contents' digests

    @classmethod
    def make(cls, cfg: DictConfig, settings: DistillSettings, task: Any, augmented: bool) -> TeacherPlan:
        """The plan of a run of ``cfg`` (its references made local) on ``task`` (data set up)."""
        cached = settings.uses_cached_outputs and not augmented and task.can_store_train()
        splits = task.stored_splits(cached)
        store = task.teacher_task()
        precision = str(cfg.trainer.precision)
        data = OmegaConf.to_container(cfg.data, resolve=True)
        data = getattr(task.datamodule, "teacher_config", lambda d: d)(data)
        contents = content_digests(data, getattr(store.datamodule, "content_keys", ()))
        free = set(getattr(task.datamodule, "teacher_free_keys", ()))
        data_key = {"data": data, **({"contents": contents} if contents else {})}
        eval_key = {**data_key, "data": {k: v for k, v in data.items() if k not in free}}
        keys = {split: config_hash({**(data_key if split == "train" else eval_key), "precision": precision})[:16]
                for split in splits}
        tempered = cached and tempers_stored_teacher(settings)
        top_k = stored_top_k(settings, store.vocab_size)
        return cls(top_k=top_k, tail="spread" if settings.logit_loss in CROSS_LOSSES else settings.top_k_tail,
                   cached=cached, rows={split: len(store.split_inputs(split)) for split in splits},
                   positions={split: store.positions(split) for split in splits}, vocab_size=store.vocab_size,
                   keys=keys, temperature=settings.effective_temperature if tempered else 1.0,
                   limit_gb=cfg.limits.get("max_teacher_store_gb", 50), precision=precision,
                   chunk_rows=store.store_chunk, evaluates_teacher=task.evaluates_teacher,
                   targets=bool(top_k) and any(store.next_ids(split) is not None for split in splits),
                   data_key=data_key)

    @property
    def form(self) -> str:
        return form_name(self.top_k)

    @property
    def online(self) -> bool:
        return not self.cached

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.positions)

    @property
    def size_bytes(self) -> int:
        """The estimated size of every stored split."""
        return estimate_bytes(sum(self.positions.values()), self.vocab_size, self.top_k, targets=self.targets)

    def check(self) -> None:
        """Before the teacher runs: the size logged, refused above ``limits.max_teacher_store_gb``; a top-k store
        standing in for the teacher at T ≠ 1 refused (ConfigError, one line naming the exact form and its size)."""
        if not self.splits:
            return
        positions = sum(self.positions.values())
        check_store_size(positions, self.vocab_size, self.top_k, self.limit_gb, targets=self.targets)
        if self.cached:
            check_temperature(positions, self.vocab_size, self.top_k, self.temperature)
        log.info("%s (%s)", describe_size(positions, self.vocab_size, self.top_k, targets=self.targets),
                 ", ".join(self.splits))

    def batch_bytes(self, positions: int) -> int:
        """Memory of one batch of ``positions`` stored teacher positions read in training (0 when online)."""
        return estimate_bytes(positions, self.vocab_size, self.top_k, targets=self.targets) if self.cached else 0

    def store(self, teacher_dir: Path, split: str) -> TeacherStore:
        return TeacherStore(Path(teacher_dir) / "outputs" / self.keys[split])

    def stored(self, teacher_dir: Path) -> dict[str, bool]:
        """Per split, whether its store is already complete (read) or must be built."""
        def complete(split: str) -> bool:
            try:
                reader = self.store(teacher_dir, split).open(split, self.top_k)
                return reader.rows == self.rows[split] and reader.layout.targets >= self.targets
            except (StoreMissing, DamagedStore):
                return False

        return {split: complete(split) for split in self.splits}

    def build(self, task: Any, teacher: torch.nn.Module, teacher_dir: Path,
              device: torch.device) -> dict[str, StoreReader]:
        """Each split's store, built where missing (the teacher run under the trainer's precision on ``device``, on
        its own view of the data)."""
        store = task.teacher_task()

        def logits(rows: torch.Tensor) -> torch.Tensor:
            with precision_context(device, self.precision):
                return store.forward(teacher.to(device), rows.to(device)).logits

        return {split: self.store(teacher_dir, split).build(split, logits, store.split_inputs(split), self.top_k,
                                                           self.chunk_rows, next_ids=store.next_ids(split))
                for split in self.splits}

    def sequences(self, task: Any, teacher: torch.nn.Module, teacher_dir: Path, settings: DistillSettings,
                  device: torch.device) -> torch.Tensor:
        """Sequence-level KD's stored teacher sequences, keyed by this run's data and its contents."""
        return teacher_sequences(task, teacher, teacher_dir, settings, self.data_key, device)

    def record(self) -> dict[str, str]:
        """What ``result.json`` says of the signal (``teacher_signal``): ``mode`` (cached or online), ``form``, the
        training loss's ``tail`` rule where a top-k store stands in, and which teacher ``teacher_kl`` is measured
        against (forward KL at T = 1 on the held-out splits)."""
        record = {"mode": "cached" if self.cached else "online", "form": self.form}
        if self.cached and self.top_k:
            record["tail"] = self.tail
        if self.evaluates_teacher:
            record["teacher_kl"] = (f"{self.form} store, tail spread evenly over the other tokens" if self.top_k
                                    else "exact teacher")
        return record
