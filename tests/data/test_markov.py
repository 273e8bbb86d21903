"""The Markov source: deterministic from its seeds, a true distribution that is what it samples, masks and
splits as documented, and a Bayes-optimal accuracy equal to a direct count."""

import numpy as np
import torch

from entrenar_bench.data.markov import MarkovDataModule, MarkovSource
from entrenar_bench.distill.losses import token_top1_matches
from entrenar_bench.tasks.causal_lm import next_token_targets

SMALL = dict(vocab_size=8, successors=3, seq_len=12, num_train=40, num_val=10, num_test=10, train_subset=16,
             batch_size=8)


def test_each_state_has_its_successors_with_weights_summing_to_one():
    source = MarkovSource(vocab_size=8, successors=3, seed=1)
    assert source.probs.shape == (8, 8, 8)
    assert np.allclose(source.probs.sum(axis=2), 1.0)
    assert ((source.probs > 0).sum(axis=2) == 3).all()


def test_same_seeds_same_data_other_seeds_other_data():
    a, b = MarkovDataModule(**SMALL), MarkovDataModule(**SMALL)
    a.setup(), b.setup()
    for split in ("train", "val", "test"):
        assert all(torch.equal(x, y) for x, y in zip(a.splits[split].tensors, b.splits[split].tensors))
    other = MarkovDataModule(**{**SMALL, "data_seed": 1})
    other.setup()
    assert not torch.equal(a.splits["train"].tensors[0], other.splits["train"].tensors[0])
    resplit = MarkovDataModule(**{**SMALL, "split_seed": 1})
    resplit.setup()
    pooled = lambda dm: sorted(map(tuple, torch.cat([dm.splits[s].tensors[0]  # noqa: E731
                                                     for s in ("train", "val", "test")]).tolist()))
    assert not torch.equal(a.splits["test"].tensors[0], resplit.splits["test"].tensors[0])
    assert pooled(a) == pooled(resplit)  # the same sequences, split otherwise


def test_samples_follow_the_true_distribution():
    source = MarkovSource(vocab_size=4, successors=2, seed=3)
    ids = source.sample(4000, 20, seed=0)
    counts = np.zeros((4, 4, 4))
    np.add.at(counts, (ids[:, :-2], ids[:, 1:-1], ids[:, 2:]), 1)
    visits = counts.sum(axis=2, keepdims=True)
    frequencies = counts / visits
    bound = 5 * np.sqrt(source.probs * (1 - source.probs) / visits) + 1e-9  # 5 binomial standard errors
    assert (np.abs(frequencies - source.probs) <= bound).all() and visits.min() > 100
    assert (counts[source.probs == 0] == 0).all()           # never a successor the state does not allow


def test_masks_splits_and_batches():
    dm = MarkovDataModule(**SMALL)
    dm.setup()
    assert [len(dm.splits[s]) for s in ("train", "val", "test")] == [40, 10, 10]
    assert dm.num_train == 16 and dm.model_kwargs() == {"vocab_size": 8} and dm.task == "causal_lm"
    ids, mask, index = next(iter(dm.train_dataloader()))
    assert ids.shape == mask.shape == (8, 12) and not mask[:, :2].any() and mask[:, 2:].all()
    assert torch.equal(ids, dm.train_inputs()[index])                   # the index names the row
    student_rows = torch.cat([b[2] for b in dm.train_dataloader()])
    assert sorted(student_rows.tolist()) == list(range(16))              # the student sees its subset only
    assert len(torch.cat([b[2] for b in dm.pretrain_dataloader()])) == 40  # the teacher the whole split
    assert next(iter(dm.val_dataloader()))[0].shape == (8, 12)              # eval_batch_size: batch_size
    wide = MarkovDataModule(**SMALL, eval_batch_size=10)
    wide.setup()
    assert (next(iter(wide.test_dataloader()))[0].shape == (10, 12)
            and next(iter(wide.train_dataloader()))[0].shape == (8, 12))
    assert {"train_subset", "eval_batch_size"} <= set(dm.teacher_free_keys)  # changing them keeps a cached teacher


def test_bayes_accuracy_equals_a_direct_count():
    dm = MarkovDataModule(**SMALL)
    dm.setup()
    ids, mask = dm.splits["test"].tensors
    targets, target_mask = next_token_targets(ids, mask)
    correct, count = token_top1_matches(dm.reference(ids), targets, target_mask)
    table = dm.source.probs
    direct = [int(np.argmax(table[row[t - 2], row[t - 1]]) == row[t]) for row in ids.tolist() for t in range(2, 12)]
    assert int(count) == len(direct) == 10 * 10
    assert int(correct) == sum(direct)
