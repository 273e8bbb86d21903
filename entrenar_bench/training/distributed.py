"""One run on several devices (``trainer.devices=N`` with Lightning's ``ddp``, or ``fsdp`` on GPUs).

Each rank trains on its own shard of every epoch's batches (``DistributedSampler``: one seeded order per
epoch, the same on every rank, padded to equal length so the gradient all-reduce never waits on a missing
batch); each evaluates its own unpadded share of the held-out data, and torchmetrics sums the counts over
ranks, so accuracy and loss are exactly those of the whole split. Batch size is per device: N devices train
on N x ``data.batch_size`` samples a step.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from omegaconf import DictConfig, open_dict
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, RandomSampler, Sampler

from entrenar_bench.errors import ConfigError


class EpochBatchSampler(BatchSampler):
    """A ``BatchSampler`` that passes Lightning's per-epoch ``set_epoch`` on to the sampler it batches."""

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)


def _with_sampler(loader: DataLoader, sampler: Sampler) -> DataLoader:
    """``loader`` with ``sampler`` choosing its samples, batched as before."""
    common = {"num_workers": loader.num_workers, "collate_fn": loader.collate_fn, "pin_memory": loader.pin_memory}
    if loader.batch_size is None and isinstance(loader.sampler, BatchSampler):  # whole batches gathered by index
        batches = EpochBatchSampler(sampler, loader.sampler.batch_size, loader.sampler.drop_last)
        return DataLoader(loader.dataset, batch_size=None, sampler=batches, **common)
    if loader.batch_size is None:
        raise ConfigError(f"cannot split a data loader with a custom batch sampler "
                          f"({type(loader.batch_sampler).__name__})"
                          " across devices; use trainer.devices=1")
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler,
                      drop_last=loader.drop_last, **common)


def _samples(loader: DataLoader) -> Sampler:
    return loader.sampler.sampler if isinstance(loader.sampler, BatchSampler) else loader.sampler


def train_shard(loader: DataLoader, trainer: L.Trainer) -> DataLoader:
    """This rank's share of each epoch's training batches (shuffled as ``loader`` is, seeded per epoch)."""
    shuffle = isinstance(_samples(loader), RandomSampler)
    sampler = DistributedSampler(loader.dataset, num_replicas=trainer.world_size, rank=trainer.global_rank,
                                 shuffle=shuffle, seed=torch.initial_seed() % 2**62)
    return _with_sampler(loader, sampler)


def eval_shard(loader: DataLoader, trainer: L.Trainer) -> DataLoader:
    """Every ``world_size``-th held-out sample from this rank's index on: no sample counted twice."""
    sampler = UnrepeatedDistributedSampler(loader.dataset, num_replicas=trainer.world_size, rank=trainer.global_rank,
                                           shuffle=False)
    return _with_sampler(loader, sampler)


class TrainingClock(L.Callback):
    """Each rank's training time, from a barrier once every rank is up (so it leaves out the seconds
    Lightning takes to start the other ranks) to the end of its last epoch."""

    def __init__(self) -> None:
        self.start = self.seconds = 0.0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        trainer.strategy.barrier("training clock")
        self.start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds = time.perf_counter() - self.start


class ValidationClock(L.Callback):
    """Seconds spent in the validation passes inside the fit (the learning curve's, the sanity check's): the
    part of the training clock that trains nothing."""

    def __init__(self) -> None:
        self.start = self.seconds = 0.0

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds += time.perf_counter() - self.start


def gather(trainer: L.Trainer, value: float) -> list[float]:
    """``value`` from every rank, in rank order (one entry on one device)."""
    if trainer.world_size == 1:
        return [value]
    values = [None] * trainer.world_size
    dist.all_gather_object(values, value)
    return values


# What Lightning's launcher sets in the process that starts the other ranks (``LOCAL_RANK`` among them,
# which would make the next run in this process believe its ranks were started for it).
LAUNCH_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


@contextmanager
def _job_argv() -> Iterator[None]:
    """Lightning starts ranks 1..N-1 by re-running ``python -m <app> <sys.argv[1:]> hydra.run.dir=<run.dir>``
    with ``hydra.output_subdir=null``. In a Hydra multirun that would be the whole sweep into a new run
    directory; here the arguments are this job's own overrides and ``run.dir`` its directory, so the other
    ranks compose the same config and write nothing of their own."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import read_write

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        yield
        return
    hydra = HydraConfig.get()
    argv = sys.argv
    sys.argv = [argv[0], *hydra.overrides.task]
    with read_write(hydra.run):
        hydra.run.dir = hydra.runtime.output_dir  # a multirun job never reads run.dir itself
    try:
        yield
    finally:
        sys.argv = argv


@contextmanager
def ranks(trainer: L.Trainer) -> Iterator[None]:
    """Around the fit and test of one run on several devices: the other ranks rerun this job; afterwards the
    process group is closed and the launch variables put back, so the next run in this process (a
    multirun's next job) starts ranks of its own."""
    if trainer.world_size == 1:
        yield
        return
    saved = {name: os.environ.get(name) for name in LAUNCH_VARIABLES}
    try:
        with _job_argv():
            yield
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def one_device(trainer_cfg: DictConfig) -> DictConfig:
    """``trainer_cfg`` on one device: what cached models (teachers, base students) train with. The other
    ranks of a multi-device run start by re-running the job, which waits on the cache's lock while rank 0
    trains; so rank 0 trains them alone, before the student's ranks start."""
    if trainer_cfg.get("devices", 1) in (1, "1") and trainer_cfg.get("strategy", "auto") == "auto":
        return trainer_cfg
    single = trainer_cfg.copy()
    with open_dict(single):
        single.devices, single.strategy = 1, "auto"
    return single
