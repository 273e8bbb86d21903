"""A run's peak memory, estimated before it trains and checked against ``limits.max_memory_gb`` and the GPU's.

Bytes, per component (float32 weights; P = parameters, B×T = one training batch's positions, V = the vocabulary):

- ``student``     4·P_student, ``gradients`` 4·P_trainable, ``optimiser`` 8·P_trainable (Adam/AdamW's two moments)
- ``teacher``     4·P_teacher when it runs every step (online); a stored teacher costs only its batch (``store``)
- ``activations`` the student's forward on one training row, every leaf module's output summed (what autograd
  keeps for the backward), times the batch; twice that with an online teacher (its forward beside the student's)
- ``logits``      the divergence's copies of a logits chunk: 3·4·rows·V (softmaxes and the gradient buffer),
  rows = the chunk's positions (``distill/losses.chunk_positions``), for a distilling strategy
- ``store``       one batch of stored teacher outputs (``TeacherPlan.batch_bytes`` of B×T positions)

The measured peak (``peak_memory_gb``) is recorded beside it in ``result.json`` (``memory_estimate``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import torch
from omegaconf import DictConfig
from torch import nn

from entrenar_bench.distill.losses import chunk_positions
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.errors import ConfigError
from entrenar_bench.models.networks import count_parameters
from entrenar_bench.tasks import Task
from entrenar_bench.teacher_signal.plan import TeacherPlan

log = logging.getLogger(__name__)
GB = 1e9  # decimal, as limits.max_teacher_store_gb and --max-memory
FLOAT = 4


@dataclass(frozen=True)
class MemoryEstimate:
    """Estimated bytes of each part of a training step's peak (see the module docstring)."""

    student: int
    gradients: int
    optimiser: int
    teacher: int
    activations: int
    logits: int
    store: int

    @property
    def total_gb(self) -> float:
        return sum(asdict(self).values()) / GB

    def as_record(self) -> dict[str, float]:
        return {"total_gb": self.total_gb, **{k: v / GB for k, v in asdict(self).items()}}

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v / GB:.3g}" for k, v in asdict(self).items() if v)
        return f"estimated peak memory {self.total_gb:.3g} GB ({parts})"


def activation_bytes(task: Task, model: nn.Module) -> int:
    """Bytes of every leaf module's outputs in a forward pass over one training row (no gradient taken)."""
    total = 0

    def count(_module, _inputs, output) -> None:
        nonlocal total
        for tensor in (output if isinstance(output, (tuple, list)) else (output,)):
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel() * tensor.element_size()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            task.forward(model, task.split_inputs("train")[:1])
    finally:
        for handle in handles:
            handle.remove()
    return total


def estimate_memory(task: Task, settings: DistillSettings, student: nn.Module, trainable: int,
                    teacher: nn.Module | None, plan: TeacherPlan | None, batch_size: int) -> MemoryEstimate:
    """The estimate for one configuration; ``trainable``: the parameters the optimiser updates; ``plan``: the
    teacher's signal (None without a teacher)."""
    online = plan is None or plan.online
    rows = task.positions_per_row(task.split_inputs("train")[:1]) * batch_size
    vocab = task.vocab_size
    activations = activation_bytes(task, student) * batch_size * (2 if teacher is not None and online else 1)
    distilling = teacher is not None and settings.needs_teacher
    logits = 3 * FLOAT * min(rows, chunk_positions(settings.loss_chunk_tokens, vocab)) * vocab if distilling else 0
    return MemoryEstimate(
        student=FLOAT * count_parameters(student), gradients=FLOAT * trainable, optimiser=2 * FLOAT * trainable,
        teacher=FLOAT * count_parameters(teacher) if teacher is not None and online else 0,
        activations=activations, logits=logits, store=plan.batch_bytes(rows) if distilling and not online else 0)


def memory_limits(cfg: DictConfig, device: torch.device) -> list[tuple[float, str]]:
    """The limits a run must fit: ``limits.max_memory_gb`` (``--max-memory``) and, on a GPU, its memory."""
    limits = []
    if (limit := cfg.limits.get("max_memory_gb")) is not None:
        limits.append((float(limit), f"--max-memory {limit:g} GB (limits.max_memory_gb)"))
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        limits.append((properties.total_memory / GB, f"the {properties.name}'s {properties.total_memory / GB:.3g} GB"))
    return limits


def check_memory(estimate: MemoryEstimate, cfg: DictConfig, device: torch.device) -> None:
    """Log the estimate; ConfigError (one line, exit 2, nothing trained) when it passes a limit."""
    log.info("%s", estimate.describe())
    for limit_gb, name in memory_limits(cfg, device):
        if estimate.total_gb > limit_gb:
            raise ConfigError(f"{estimate.describe()} does not fit {name}; use a smaller data.batch_size, "
                              "a top-k teacher store (distill.teacher_top_k) or a smaller student")


def trainable_parameters(student: nn.Module, objective: nn.Module | None = None) -> int:
    """Parameters the optimiser updates: the student's trainable ones and the objective's projections."""
    return count_parameters(student, trainable_only=True) + (count_parameters(objective) if objective else 0)
