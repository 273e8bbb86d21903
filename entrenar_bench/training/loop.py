"""Fit a DistillationModule with a Lightning Trainer from config, then evaluate it.

A run can resume from a mid-run checkpoint (``training/checkpoints.py``) and span several devices
(``training/distributed.py``).
"""

from __future__ import annotations

import logging
import math
import platform
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.model_helpers import is_overridden
from omegaconf import DictConfig

from entrenar_bench.training.checkpoints import AtomicCheckpointIO, EpochCheckpoint, join_curve, read_curve
from entrenar_bench.training.distributed import (
    TrainingClock, ValidationClock, eval_shard, gather, ranks, train_shard,
)
from entrenar_bench.training.memory import PeakMemory

warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
warnings.filterwarnings("ignore", message=r".*number of training batches.*smaller than the logging interval.*")
# the frozen teacher
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
# synced by torchmetrics
warnings.filterwarnings("ignore", message=r".*when logging on epoch level in distributed setting.*")
warnings.filterwarnings("ignore", message=r".*The `srun` command is available on your system but is not used.*")
warnings.filterwarnings("ignore", message=r".*defined a `validation_step` but have no `val_dataloader`.*")  # no curve
warnings.filterwarnings("ignore", message=r".*Experiment logs directory .* exists and is not empty.*")  # the run dir

VAL_POINTS = 10  # validation passes a run makes for its learning curve: every ceil(epochs / 10) epochs


def _lightning_logs_through_root() -> None:
    """Importing Lightning gives its ``lightning`` logger a console handler of its own and sets its loggers to
    INFO, after Hydra configured logging: each line then printed twice (its handler and Hydra's root one),
    with per-run banners (GPU/TPU available, a litlogger advertisement). Under a configured root logger,
    Lightning's handler goes and its loggers keep warnings, as ``conf/hydra/default.yaml`` asks of later jobs."""
    if logging.getLogger().hasHandlers():
        for handler in list(logging.getLogger("lightning").handlers):
            logging.getLogger("lightning").removeHandler(handler)
        for name in ("lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)


_lightning_logs_through_root()


@dataclass
class FitResult:
    metrics: dict[str, float]
    metrics_before: dict[str, float] | None  # the same, before training (None when it did not train)
    time_s: float  # the fit's wall time, its validation passes included
    samples_per_s: float
    peak_memory_gb: float
    peak_memory_kind: str
    device: str
    extra: dict = field(default_factory=dict)
    validation_s: float = 0.0  # of time_s, the validation passes (the learning curve's)

    @property
    def training_s(self) -> float:
        """The time that trained: ``time_s`` less its validation passes (what throughputs divide by)."""
        return self.time_s - self.validation_s


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


def curve_settings(module: L.LightningModule, loggers: list[Logger] | None, epochs: int, max_steps: int = -1) -> dict:
    """Trainer arguments for per-epoch metrics in each of ``loggers`` (the ``logger`` group; CSV: the run's
    ``metrics.csv``): the module's mean training loss every epoch and, where it can validate and its length is in
    epochs (``max_steps`` -1), its validation metrics every ceil(epochs / VAL_POINTS) epochs (ten cheap passes over
    the validation split); none without. A run budgeted in tokens has its held-out curve against tokens where it
    asks for one (``train.eval_every_tokens``, ``training/heldout.py``), not a pass at each of its few epochs' ends
    (on the smollm2 preset three passes over its 31 validation blocks, each as long as ~2 training steps)."""
    if not loggers:
        return {}
    settings: dict = {"logger": loggers}
    if is_overridden("validation_step", module) and max_steps < 0:
        settings.update(limit_val_batches=1.0, check_val_every_n_epoch=max(1, math.ceil(epochs / VAL_POINTS)))
    return settings


def evaluate(trainer: L.Trainer, module: L.LightningModule, eval_loaders: list[Iterable]) -> dict[str, float]:
    """The module's metrics on the validation and test splits (as :func:`evaluated_metrics`), logged nowhere.
    The random generators are left as they were (each data loader's iterator draws its base seed from them),
    so a run that evaluates before training trains exactly as one that does not."""
    loggers, trainer.loggers = trainer.loggers, []
    device = trainer.strategy.root_device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        trainer.test(module, dataloaders=eval_loaders, verbose=False)
    trainer.loggers = loggers
    return evaluated_metrics(trainer)


def evaluated_metrics(trainer: L.Trainer) -> dict[str, float]:
    """What the module logged in its test pass: ``test/<name>`` as ``<name>``, ``val/<name>`` as ``val_<name>``."""
    logged = {key: float(value) for key, value in trainer.callback_metrics.items()}
    metrics = {key.removeprefix("test/"): value for key, value in logged.items() if key.startswith("test/")}
    metrics.update({f"val_{key.removeprefix('val/')}": value for key, value in logged.items()
                    if key.startswith("val/")})
    return metrics


def build_trainer(trainer_cfg: DictConfig, epochs: int, callbacks: list, curves: dict,
                  max_steps: int = -1) -> L.Trainer:
    """The configured Lightning ``Trainer`` for ``epochs`` (and at most ``max_steps``; -1: no limit): atomic
    checkpoints (enabled with a checkpoint callback), this project's own distributed samplers, evaluations under
    ``no_grad`` (so the pass before training leaves no inference tensors behind). ``deterministic: true`` keeps
    torch's deterministic algorithms but not their filling of every new tensor with NaN, a debugging aid that
    catches reads of uninitialised memory (no result depends on it): on the smollm2 preset ~6 % of a training
    step's CPU time went to those writes of activation-sized buffers, which a plain loop never makes."""
    saves = any(isinstance(c, EpochCheckpoint) for c in callbacks)
    trainer = instantiate(trainer_cfg, max_epochs=epochs, max_steps=max_steps, callbacks=callbacks,
                          use_distributed_sampler=False, enable_checkpointing=saves, plugins=[AtomicCheckpointIO()],
                          inference_mode=False, **curves)
    torch.utils.deterministic.fill_uninitialized_memory = False  # after Lightning set deterministic algorithms
    return trainer


def rank_loaders(trainer: L.Trainer, datamodule: L.LightningDataModule,
                 train_loader: Iterable | None) -> tuple[Iterable, list[Iterable]]:
    """This rank's training batches and its [validation, test] batches (each rank its own share on several)."""
    train_loader = train_loader or datamodule.train_dataloader()
    eval_loaders = [datamodule.val_dataloader(), datamodule.test_dataloader()]
    if trainer.world_size > 1:
        return train_shard(train_loader, trainer), [eval_shard(loader, trainer) for loader in eval_loaders]
    return train_loader, eval_loaders


def fit_and_evaluate(
    module: L.LightningModule,
    datamodule: L.LightningDataModule,
    trainer_cfg: DictConfig,
    epochs: int,
    train_loader: Iterable | None = None,
    checkpoint: Path | None = None,
    checkpoint_every: int | None = None,
    log_dir: Path | None = None,
    loggers: list[Logger] | None = None,
    max_steps: int = -1,
    callbacks: Sequence[Callback] = (),
    evaluate_before: Callable[[Callable[[], dict], list[Iterable], torch.device], dict[str, float]] | None = None,
) -> FitResult:
    """Train for ``epochs`` (timed, peak memory measured; 0: not at all), then evaluate on val and test.

    Metrics: every value the module logs as ``test/<name>`` (as ``<name>``: at least ``accuracy`` and
    ``loss``) and ``val/<name>`` (as ``val_<name>``). ``checkpoint``: the file a run resumes from when it
    exists and saves to every ``checkpoint_every`` epochs. On several devices the metrics cover every rank's
    share, ``time_s`` is the slowest rank's training time (``TrainingClock``: without the start of the other
    ranks) and ``peak_memory_gb`` the largest of the per-device peaks.
    ``log_dir``: where the learning curve (``metrics.csv``) of a resumed run is joined; ``loggers``: where the
    curve goes (:func:`curve_settings`); its validation passes count in ``time_s`` and, apart, in ``validation_s``
    (``samples_per_s`` divides by the rest, ``training_s``). ``max_steps``: a budget in steps
    (``training/budget.py``); ``callbacks``: more of them (the token counter, the held-out curve).
    ``metrics_before``: the same evaluation before the first epoch (the start the training is judged against;
    a truncated pretrained model starts at a perplexity in the millions), outside the timed span; ``evaluate_before``,
    where given, makes it from the evaluation, the held-out loaders and the device (``run/metrics_before.py``: a cache),
    on one device.
    """
    curves = curve_settings(module, loggers, epochs, max_steps)
    saver = EpochCheckpoint(checkpoint, checkpoint_every) if checkpoint is not None else None
    resume = checkpoint if checkpoint is not None and checkpoint.exists() else None
    earlier_curve = read_curve(log_dir) if resume else ""
    clock, validation = TrainingClock(), ValidationClock()
    trainer = build_trainer(trainer_cfg, epochs, [c for c in (saver, clock, validation) if c] + list(callbacks), curves,
                            max_steps)
    train_loader, eval_loaders = rank_loaders(trainer, datamodule, train_loader)
    device = trainer.strategy.root_device
    with ranks(trainer):
        before = None
        if epochs > 0:
            def measure() -> dict[str, float]:
                return evaluate(trainer, module, eval_loaders)

            cached = evaluate_before is not None and trainer.world_size == 1  # a collective pass on several devices
            before = evaluate_before(measure, eval_loaders, device) if cached else measure()
        with PeakMemory(device) as memory:
            start = time.perf_counter()
            if epochs > 0:
                trainer.fit(module, train_dataloaders=train_loader, ckpt_path=resume,
                            val_dataloaders=eval_loaders[0] if "check_val_every_n_epoch" in curves else None)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            time_s = time.perf_counter() - start
        trainer.loggers = []  # the curve holds one row an epoch; the final evaluation goes to result.json
        after = evaluate(trainer, module, eval_loaders)
        validation_s = max(gather(trainer, validation.seconds))
        if trainer.world_size > 1:
            time_s = max(gather(trainer, clock.seconds))
        peaks = gather(trainer, memory.peak_gb)
    resumed_from = saver.resumed_from_epoch if saver else None
    join_curve(log_dir, earlier_curve, resumed_from)
    trained_epochs = epochs - (resumed_from or 0)
    return FitResult(
        metrics=after,
        metrics_before=before,
        time_s=time_s,
        samples_per_s=trained_epochs * datamodule.num_train / (time_s - validation_s) if trained_epochs else 0.0,
        peak_memory_gb=max(peaks),
        peak_memory_kind=memory.kind,
        device=device_name(device),
        extra={"resumed_from_epoch": resumed_from, "devices": trainer.world_size, "peak_memory_per_device_gb": peaks},
        validation_s=validation_s,
    )
