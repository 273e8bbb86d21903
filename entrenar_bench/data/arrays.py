"""Data modules: in-memory tensors, a fixed stratified split, batches by index.

Contract for any data module named by ``_target_`` in ``conf/data``: a
``LightningDataModule`` whose ``setup()`` fills ``input_shape`` (per-sample shape),
``num_classes`` and ``num_train``, with ``train_dataloader``, ``val_dataloader`` and
``test_dataloader`` yielding ``(x, y)`` batches. Shared with the token modules (``text.py``):
``task`` ("classification" here) picks the objective, ``model_kwargs()`` is what the model builder
is given, ``pretrain_dataloader()`` is what a cached teacher trains on, ``teacher_free_keys`` are
config keys that do not change a teacher's data. Nothing here downloads anything.
"""

from __future__ import annotations

import functools

import lightning as L
import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset


def stratified_split(
    x: np.ndarray, y: np.ndarray, val_fraction: float, test_fraction: float, split_seed: int
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Split into train/val/test with class proportions kept, the same for every run seed."""
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=split_seed
    )
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_fraction / (1.0 - test_fraction), stratify=y_rest, random_state=split_seed
    )
    return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}


class _Rows(TensorDataset):
    """A TensorDataset read a batch at a time: the sampler's list of rows made one index tensor, once for all the
    tensors (TensorDataset converts the list for each; ~40 us a batch here)."""

    def __getitem__(self, index):
        index = torch.as_tensor(index)
        return tuple(tensor[index] for tensor in self.tensors)


class ArrayDataModule(L.LightningDataModule):
    """Holds the three splits as tensors; batches are gathered by index (no per-sample collate)."""

    task = "classification"
    teacher_free_keys: tuple[str, ...] = ()
    content_keys: tuple[str, ...] = ()  # config keys naming files the data is made of (none: generated or bundled)

    def __init__(self, batch_size: int = 64, val_fraction: float = 0.2, test_fraction: float = 0.2,
                 split_seed: int = 0):
        super().__init__()
        self.batch_size = batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.splits: dict[str, TensorDataset] = {}
        self.input_shape: tuple[int, ...] = ()
        self.num_classes = 0
        self.num_train = 0

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Return all samples ``x`` shaped ``(N, *input_shape)`` and integer labels ``y``."""
        raise NotImplementedError

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        x, y = self.load_arrays()
        parts = stratified_split(x, y, self.val_fraction, self.test_fraction, self.split_seed)
        self.splits = {
            name: TensorDataset(torch.as_tensor(xs, dtype=torch.float32), torch.as_tensor(ys, dtype=torch.long))
            for name, (xs, ys) in parts.items()
        }
        self.input_shape = tuple(x.shape[1:])
        self.num_classes = int(y.max()) + 1
        self.num_train = len(parts["train"][1])

    def model_kwargs(self) -> dict:
        return {"input_shape": list(self.input_shape), "num_classes": self.num_classes}

    def _loader(self, split: str, shuffle: bool, with_index: bool = False) -> DataLoader:
        dataset = self.splits[split]
        dataset = _Rows(*dataset.tensors, *([torch.arange(len(dataset))] if with_index else []))
        sampler = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
        return DataLoader(dataset, batch_size=None, sampler=BatchSampler(sampler, self.batch_size, drop_last=False))

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def pretrain_dataloader(self) -> DataLoader:
        """A cached teacher trains on the same training split as the student."""
        return self.train_dataloader()

    def indexed_train_dataloader(self) -> DataLoader:
        """Training batches ``(x, y, index)``: the index lets precomputed teacher outputs be looked up."""
        return self._loader("train", shuffle=True, with_index=True)

    def train_inputs(self) -> torch.Tensor:
        return self.splits["train"].tensors[0]

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


@functools.cache
def bundled_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 digits scaled to [0, 1], ``(N, 1, 8, 8)``, and their labels: read once a process (~20 ms a
    read; a sweep's jobs share one process), read-only (the splits are copies)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = (digits.images / 16.0)[:, None, :, :], digits.target
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


class DigitsDataModule(ArrayDataModule):
    """scikit-learn's bundled 8x8 digits (1,797 images, shipped with the package), scaled to [0, 1]."""

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return bundled_digits()


class MNIST1DDataModule(ArrayDataModule):
    """MNIST-1D generated procedurally (``make_dataset``; never the downloading ``get_dataset``).

    ``num_samples`` sets the size, so the same data grows to GPU scale.
    """

    def __init__(self, num_samples: int = 5000, data_seed: int = 42, **kwargs):
        super().__init__(**kwargs)
        self.num_samples = num_samples
        self.data_seed = data_seed

    def load_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples = self.num_samples
        args.seed = self.data_seed
        args.train_split = 1.0  # our own stratified split below
        data = make_dataset(args)
        return data["x"][:, None, :].astype(np.float32), data["y"]


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each sample by up to ``max_shift`` positions along every spatial axis, zero-filled."""
    if max_shift <= 0:
        return x
    spatial = x.shape[2:]
    padded = torch.nn.functional.pad(x, [max_shift, max_shift] * len(spatial))
    out = torch.empty_like(x)
    offsets = torch.randint(0, 2 * max_shift + 1, (x.shape[0], len(spatial)), generator=generator)
    for i in range(x.shape[0]):
        index = tuple(slice(int(o), int(o) + size) for o, size in zip(offsets[i], spatial))
        out[i] = padded[(i, slice(None), *index)]
    return out
