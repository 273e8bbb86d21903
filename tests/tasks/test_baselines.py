"""The uniform and unigram baselines of a language model, by hand."""

import math

import pytest
import torch

from entrenar_bench.tasks.baselines import lm_baselines, unigram_cross_entropy


def test_the_unigram_model_is_add_one_smoothed_counts():
    train = torch.tensor([0, 0, 0, 1])            # counts 3, 1, 0 over V = 3; C = 4
    held = torch.tensor([0, 2])
    expected = -(math.log(4 / 7) + math.log(1 / 7)) / 2
    assert unigram_cross_entropy(train, held, 3) == pytest.approx(expected)


def test_baselines_read_only_target_positions_of_each_split():
    ids = torch.tensor([[5, 0, 0, 1], [5, 0, 2, 2]])
    mask = torch.tensor([[False, True, True, True], [False, True, True, False]])   # position 0 never a target
    splits = {"train": (ids, mask), "val": (ids[:1], mask[:1]), "test": (ids[1:], mask[1:])}
    out = lm_baselines(splits, vocab_size=6)
    assert out["uniform"] == pytest.approx(math.log(6))
    counts = torch.tensor([3, 1, 1, 0, 0, 0], dtype=torch.float64)   # the 5s are never targets
    p = (counts + 1) / (counts.sum() + 6)
    assert out["unigram"] == pytest.approx(float(-(p[0].log() + p[2].log()) / 2))
    assert out["unigram"] < out["uniform"] and "add-one" in out["smoothing"]
