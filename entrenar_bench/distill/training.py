"""Fit a DistillationModule with a Lightning Trainer from config, then evaluate it."""

from __future__ import annotations

import platform
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from entrenar_bench.distill.memory import PeakMemory

warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
warnings.filterwarnings("ignore", message=r".*number of training batches.*smaller than the logging interval.*")
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")  # the frozen teacher
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")


@dataclass
class FitResult:
    metrics: dict[str, float]
    time_s: float
    samples_per_s: float
    peak_memory_gb: float
    peak_memory_kind: str
    device: str
    extra: dict = field(default_factory=dict)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    return f"cpu: {cpu_model()}"


def fit_and_evaluate(
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    trainer_cfg: DictConfig,
    epochs: int,
    train_loader: Iterable | None = None,
) -> FitResult:
    """Train for ``epochs`` (timed, peak memory measured), then accuracy and CE loss on val and test."""
    trainer: L.Trainer = instantiate(trainer_cfg, max_epochs=epochs)
    device = trainer.strategy.root_device
    with PeakMemory(device) as memory:
        start = time.perf_counter()
        trainer.fit(module, train_dataloaders=train_loader or datamodule.train_dataloader())
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        time_s = time.perf_counter() - start
    trainer.test(module, dataloaders=[datamodule.val_dataloader(), datamodule.test_dataloader()], verbose=False)
    logged = trainer.callback_metrics
    metrics = {
        "accuracy": float(logged["test/accuracy"]),
        "loss": float(logged["test/loss"]),
        "val_accuracy": float(logged["val/accuracy"]),
        "val_loss": float(logged["val/loss"]),
    }
    return FitResult(
        metrics=metrics,
        time_s=time_s,
        samples_per_s=epochs * datamodule.num_train / time_s,
        peak_memory_gb=memory.peak_gb,
        peak_memory_kind=memory.kind,
        device=device_name(device),
    )
