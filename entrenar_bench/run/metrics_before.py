"""The evaluation before training (``metrics_before``), cached by what it depends on, so a sweep makes it once.

The metrics of an untrained student on the validation and test splits are a function of its starting weights, the
held-out batches, the teacher they are measured against (``teacher_kl``: its stored outputs, else the teacher
itself), the task's metrics and the device and precision that compute them; not of the seed, the strategy or the
training settings. A student pruned from its teacher starts from the same weights in every run of a sweep (and a
randomly initialised one in every run of the same seed), so the runs share one evaluation: on the smollm2 preset
a pass over 31 validation and 31 test blocks, as long as ~6 training steps. Key: SHA-256 of the starting weights'
bytes (~0.4 s for 100M parameters), of every held-out batch's tensors, of the teacher's identity (its cache
directory, or each split's store directory: both named by their contents) and of the rest above; the file is
``<cache>/metrics_before/<key>.json``, written once under a file lock (parallel jobs of one key wait and read it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from entrenar_bench import __version__
from entrenar_bench.files import write_json_atomic

FOLDER = "metrics_before"


def _update(digest: Any, tensor: torch.Tensor) -> None:
    """The tensor's dtype, shape and bytes into ``digest``."""
    tensor = tensor.detach().to("cpu").contiguous()
    digest.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    digest.update(tensor.reshape(-1).view(torch.uint8).numpy().data if tensor.numel() else b"")


def weights_digest(model: torch.nn.Module) -> str:
    """SHA-256 of the model's parameters and buffers (names, dtypes, shapes, bytes)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        _update(digest, tensor)
    return digest.hexdigest()


def batches_digest(loaders: Iterable[Iterable]) -> str:
    """SHA-256 of every tensor of every batch of ``loaders``, in order (batch boundaries included)."""
    digest = hashlib.sha256()
    for loader in loaders:
        digest.update(b"|loader")
        for batch in loader:
            for part in batch if isinstance(batch, (tuple, list)) else (batch,):
                if isinstance(part, torch.Tensor):
                    _update(digest, part)
    return digest.hexdigest()


def cache_file(cache_dir: Path | str, module: Any, eval_loaders: list[Iterable], teacher_dir: Path | None,
               device: torch.device, precision: str) -> Path:
    """Where the evaluation before training of ``module``'s student on ``eval_loaders`` is kept."""
    teacher = None
    if module.with_teacher:
        teacher = {split: str(getattr(module.teacher_signal.get(split), "path", teacher_dir))
                   for split in ("val", "test")}
    key = {"version": __version__, "task": type(module.task).__name__,
           "metrics": {split: list(metrics.keys()) for split, metrics in module.eval_metrics.items()},
           "student": weights_digest(module.student), "data": batches_digest(eval_loaders), "teacher": teacher,
           "device": device.type, "precision": precision}
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir).resolve() / FOLDER / f"{name}.json"


def cached_evaluation(path: Path, evaluate: Callable[[], dict[str, float]]) -> tuple[dict[str, float], bool]:
    """The metrics kept in ``path``, else ``evaluate()``'s, kept there; and whether they were reused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.with_suffix(".lock"))):
        if path.exists():
            return json.loads(path.read_text())["metrics"], True
        metrics = evaluate()
        write_json_atomic(path, {"metrics": metrics})
        return metrics, False


class CachedBefore:
    """A run's evaluation before training through the cache (``fit_and_evaluate``'s ``before``); ``as_record``:
    what the record says of it (the file, and whether another run had made it)."""

    def __init__(self, cache_dir: Path | str, module: Any, teacher_dir: Path | None, precision: str) -> None:
        self.cache_dir, self.module, self.teacher_dir, self.precision = cache_dir, module, teacher_dir, precision
        self.path: Path | None = None
        self.reused = False

    def __call__(self, evaluate: Callable[[], dict[str, float]], eval_loaders: list[Iterable],
                 device: torch.device) -> dict[str, float]:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):  # a loader's iterator draws
            self.path = cache_file(self.cache_dir, self.module, eval_loaders, self.teacher_dir, device,  # its seed
                                   self.precision)
        metrics, self.reused = cached_evaluation(self.path, evaluate)
        return metrics

    def as_record(self) -> dict[str, Any] | None:
        return None if self.path is None else {"file": str(self.path), "reused": self.reused}
