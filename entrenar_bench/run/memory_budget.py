"""A run's peak memory, estimated before it trains and checked against ``limits.max_memory_gb`` and the GPU's.

An upper bound of what a training step holds at its peak, in bytes (float32; P = parameters, N = B×T positions
of one training batch, V = the vocabulary or classes, c = the divergence's chunk of positions):

- ``student``     4·P_student, ``gradients`` 4·P_trainable
- ``optimiser``   12·P_trainable: Adam/AdamW's two moments and the square root its foreach step makes
- ``teacher``     4·P_teacher when it runs every step (online); a stored teacher costs only its batch (``store``)
- ``activations`` what autograd keeps for the backward of the student's forward over one training row (every
  saved tensor's storage once, the weights excepted: per layer its inputs, attention and MLP intermediates,
  norms) plus its output logits, times the batch; with an online teacher its forward besides (its logits
  and the most one leaf module holds: see :func:`forward_bytes`)
- ``logits``      the loss's copies of the (N, V) logits beside the logits themselves: the cross-entropy's
  unchunked log-softmax, its gradient and the logits' gradient (3·4·N·V); a distilling strategy adds the
  divergence's gradient buffer (4·N·V) and one chunk's float32 intermediates (6·4·c·V)
- ``store``       one batch of stored teacher outputs (``TeacherPlan.batch_bytes`` of N positions); a split's
  store small enough to be held in memory (``distill/module.HELD_STORE_BYTES``) twice its size on disk (read
  into int64 ids and float32 values)
- ``generation``  on-policy or sequence-level sampling: the KV cache of the batch's sequences (2·layers·N·KV
  heads·head size·4) and one step's logits (4·B·V)

The measured peak (``peak_memory_gb``) is recorded beside it in ``result.json`` (``memory_estimate``);
``benchmarks/memory_estimate.py`` compares the two (BENCHMARKS.md).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import torch
from omegaconf import DictConfig
from torch import nn

from entrenar_bench.distill.losses import chunk_positions
from entrenar_bench.distill.module import HELD_STORE_BYTES
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
    generation: int = 0

    @property
    def total_gb(self) -> float:
        return sum(asdict(self).values()) / GB

    def as_record(self) -> dict[str, float]:
        return {"total_gb": self.total_gb, **{k: v / GB for k, v in asdict(self).items()}}

    def describe(self) -> str:
        parts = ", ".join(f"{k} {v / GB:.3g}" for k, v in asdict(self).items() if v)
        return f"estimated peak memory {self.total_gb:.3g} GB ({parts})"


def activation_bytes(task: Task, model: nn.Module, hidden: bool = False, attentions: bool = False) -> int:
    """Bytes autograd keeps for the backward of a forward over one training row (each saved tensor's storage
    once, the weights' excepted) plus the output logits."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            saved[storage.data_ptr()] = storage.nbytes()
        return tensor

    row = task.split_inputs("train")[:1].clone()  # its own storage, not a view of the whole split
    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        logits = task.forward(model, row, hidden, attentions).logits
    return sum(saved.values()) + logits.numel() * logits.element_size()


def forward_bytes(task: Task, model: nn.Module) -> int:
    """Bytes of a forward pass over one training row without a gradient: its logits (kept for the loss) and the
    most any other leaf module holds at once, its input, its output and two more of that size (a gated MLP's
    activation and up-projection beside their product); the leaf that makes the logits holds its input."""
    held: list[tuple[int, int, int]] = []  # (output's data pointer, input bytes, output bytes) of each leaf

    def count(module, inputs, output) -> None:
        outputs = [t for t in (output if isinstance(output, (tuple, list)) else (output,)) if torch.is_tensor(t)]
        size = lambda tensors: sum(t.numel() * t.element_size() for t in tensors)  # noqa: E731
        if outputs:
            held.append((outputs[0].data_ptr(), size([t for t in inputs if torch.is_tensor(t)]), size(outputs)))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(count) for m in leaves]
    try:
        with torch.no_grad():
            logits = task.forward(model, task.split_inputs("train")[:1]).logits
    finally:
        for handle in handles:
            handle.remove()
    most = max((into if ptr == logits.data_ptr() else into + 3 * out for ptr, into, out in held), default=0)
    return most + logits.numel() * logits.element_size()


def generation_bytes(task: Task, model: nn.Module, rows: int, batch_size: int) -> int:
    """The KV cache of sampling the batch's sequences (keys and values of every layer at every position) and
    one step's logits; 0 for a model without a transformer config."""
    config = getattr(model, "config", None)
    layers = getattr(config, "num_hidden_layers", None)
    if not layers:
        return 0
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    return FLOAT * (2 * layers * rows * kv_heads * head_dim + batch_size * task.vocab_size)


def estimate_memory(task: Task, settings: DistillSettings, student: nn.Module, trainable: int,
                    teacher: nn.Module | None, plan: TeacherPlan | None, batch_size: int) -> MemoryEstimate:
    """The estimate for one configuration; ``trainable``: the parameters the optimiser updates; ``plan``: the
    teacher's signal (None without a teacher)."""
    online = plan is None or plan.online
    rows = task.positions_per_row(task.split_inputs("train")[:1]) * batch_size
    vocab = task.vocab_size
    distilling = teacher is not None and settings.needs_teacher
    running = teacher is not None and online
    per_row = activation_bytes(task, student, settings.needs_hidden, settings.needs_attentions)
    activations = (per_row + (forward_bytes(task.teacher_task(), teacher) if running else 0)) * batch_size
    logits = 3 * FLOAT * rows * vocab
    if distilling:
        logits += FLOAT * vocab * (rows + 6 * min(rows, chunk_positions(settings.loss_chunk_tokens, vocab)))
    return MemoryEstimate(
        student=FLOAT * count_parameters(student), gradients=FLOAT * trainable, optimiser=3 * FLOAT * trainable,
        teacher=FLOAT * count_parameters(teacher) if running else 0, activations=activations, logits=logits,
        store=store_bytes(plan, rows) if distilling and not online else 0,
        generation=generation_bytes(task, student, rows, batch_size) if settings.generates else 0)


def store_bytes(plan: TeacherPlan, rows: int) -> int:
    """A batch of the stored outputs, or the whole store where it is small enough to be held in memory."""
    held = plan.size_bytes
    return 2 * held if held <= HELD_STORE_BYTES else plan.batch_bytes(rows)


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
