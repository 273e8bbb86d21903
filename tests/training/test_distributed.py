"""One run on several devices: every rank trains on its own equal share of each epoch's batches, and the
held-out splits are shared out without a sample counted twice (so metrics summed over ranks are exact)."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from omegaconf import OmegaConf
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from entrenar_bench.training.distributed import eval_shard, one_device, train_shard

DATA = TensorDataset(torch.arange(101).float(), torch.arange(101))


def _ranks(world: int) -> list:
    return [SimpleNamespace(world_size=world, global_rank=rank) for rank in range(world)]


def _by_index(shuffle: bool) -> DataLoader:
    """The shape of entrenar_bench's array loaders: whole batches gathered by index."""
    sampler = RandomSampler(DATA) if shuffle else SequentialSampler(DATA)
    return DataLoader(DATA, batch_size=None, sampler=BatchSampler(sampler, 8, drop_last=False))


def _indices(loader: DataLoader) -> list[int]:
    return [int(i) for _, y in loader for i in y.reshape(-1)]


def test_eval_shards_cover_every_sample_once():
    for loader in (_by_index(shuffle=False), DataLoader(DATA, batch_size=8)):
        shards = [_indices(eval_shard(loader, trainer)) for trainer in _ranks(3)]
        assert sorted(sum(shards, [])) == list(range(101))


def test_train_shards_are_equal_disjoint_batches_of_the_same_size():
    torch.manual_seed(0)
    loaders = [train_shard(_by_index(shuffle=True), trainer) for trainer in _ranks(2)]
    for loader in loaders:
        loader.sampler.set_epoch(3)  # what Lightning calls every epoch
    shards = [_indices(loader) for loader in loaders]
    assert len(shards[0]) == len(shards[1]) == 51  # padded to equal length: no rank waits on a missing batch
    assert set(shards[0]) | set(shards[1]) == set(range(101))
    assert max(len(y) for _, y in loaders[0]) == 8  # the batch size is per device
    loaders[0].sampler.set_epoch(4)
    assert _indices(loaders[0]) != shards[0]  # a new order each epoch


def test_cached_models_train_on_one_device():
    cfg = OmegaConf.create({"accelerator": "cpu", "devices": 2, "strategy": "ddp"})
    single = one_device(cfg)
    assert single.devices == 1 and single.strategy == "auto" and cfg.devices == 2
    plain = OmegaConf.create({"accelerator": "cpu", "devices": 1, "strategy": "auto"})
    assert one_device(plain) is plain
