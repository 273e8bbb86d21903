"""A run's budget and what it consumed: its length in tokens or epochs (``training/budget.py``), the held-out
curve against tokens (``training/heldout.py``), and the record's ``tokens_seen``, ``flops``
(``run/compute.py``), ``recovery`` (``run/recovery.py``) and ``curve``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig
from torch import nn

from entrenar_bench.run.compute import run_flops
from entrenar_bench.run.recovery import run_recovery
from entrenar_bench.tasks import Task
from entrenar_bench.training.budget import Length, TokenCounter, run_length
from entrenar_bench.training.heldout import HeldOutCurve, evaluation_subset, subset_metric


@dataclass
class RunBudget:
    """How long a run trains, the callbacks that count and draw it, and the token counts its FLOPs rest on."""

    length: Length
    counter: TokenCounter
    curve: HeldOutCurve | None
    tokens_per_row: float
    rows: int  # training rows (the student's subset, or seq-KD's sequences)
    batch_size: int
    teacher_on_subset: float | None = None  # the teacher's value on the curve's subset

    @property
    def callbacks(self) -> list:
        return [c for c in (self.counter, self.curve) if c is not None]


def plan_budget(train: DictConfig, task: Task, loader: Any, batch_size: int,
                teacher: nn.Module | None = None) -> RunBudget:
    """The budget of a run of ``train`` (``tokens``, else ``epochs``; ``eval_every_tokens``, ``eval_rows``) over
    the training batches of ``loader``; the teacher measured once on the curve's subset where there is one."""
    per_row = task.tokens_per_row(loader)
    length = run_length(int(train.epochs), train.get("tokens"), per_row, batch_size, len(loader))
    counter = TokenCounter(length.tokens)
    curve, on_subset = None, None
    if train.get("eval_every_tokens"):
        subset = evaluation_subset(task.datamodule.val_dataloader(), int(train.get("eval_rows") or 64))
        curve = HeldOutCurve(counter, int(train.eval_every_tokens), subset)
        if teacher is not None:
            on_subset = subset_metric(task, teacher, subset, next(teacher.parameters()).device)
    rows = len(loader.dataset) if hasattr(loader, "dataset") else len(loader) * batch_size
    return RunBudget(length, counter, curve, per_row, rows, batch_size, on_subset)


def budget_record(budget: RunBudget, module: Any, devices: int, student: nn.Module, teacher: nn.Module | None,
                  teacher_mode: str | None, seq_kd: bool, metrics_before: dict | None, metrics: dict,
                  teacher_metrics: dict | None, metric: str) -> dict[str, Any]:
    """The record's fields of the budget: ``tokens_seen`` (all ranks: each saw an equal share), ``budget``,
    ``flops``, ``recovery`` and ``recovery_of``, and ``curve`` (where one was drawn)."""
    seen = budget.counter.seen(module) * devices
    data_tokens = round(budget.tokens_per_row * budget.rows)  # the training rows' target tokens
    flops = run_flops(student, teacher, seen, teacher_mode if teacher is not None else None,
                      stored_tokens=data_tokens, generated_tokens=int(getattr(module, "generated_tokens", 0)) * devices,
                      seq_kd_tokens=data_tokens if seq_kd else 0)
    curve = None
    if budget.curve is not None:
        curve = {"metric": metric, "split": "val", "rows": sum(len(b[0]) for b in budget.curve.batches),
                 "every_tokens": budget.curve.every, "teacher": budget.teacher_on_subset}
    return {"tokens_seen": seen,
            "budget": {**budget.length.as_record(), "tokens_per_row": budget.tokens_per_row,
                       "batch_size": budget.batch_size},
            "flops": flops, "curve": curve,
            **run_recovery(metrics_before, metrics, teacher_metrics, metric)}
