"""The bundled digits: read once a process, read-only, each data module's splits its own copies."""

import pytest
import torch

from entrenar_bench.data.arrays import DigitsDataModule, bundled_digits


def test_digits_are_read_once_and_each_data_module_gets_its_own_splits():
    images, labels = bundled_digits()
    assert bundled_digits()[0] is images and images.shape == (1797, 1, 8, 8) and float(images.max()) == 1.0
    with pytest.raises(ValueError):
        labels[0] = 3  # read-only: no run can change another's data
    first, second = DigitsDataModule(batch_size=128), DigitsDataModule(batch_size=128)
    first.setup()
    second.setup()
    for name in ("train", "val", "test"):
        a, b = first.splits[name].tensors, second.splits[name].tensors
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    first.splits["train"].tensors[1][0] += 1  # a run's own copy
    assert not torch.equal(first.splits["train"].tensors[1], second.splits["train"].tensors[1])
