"""The Markov source read through two tokenizations: the student's pairs and singles, their alignment to the
teacher's symbols, the student's true next-token distribution, the batched merge against merge_groups."""

import numpy as np
import pytest
import torch

from entrenar_bench.data.alignment import align_by_byte_offsets
from entrenar_bench.data.markov_cross import MarkovCrossDataModule
from entrenar_bench.distill.cross_term import merge_positions, read_probabilities
from entrenar_bench.distill.cross_vocab import merge_groups, vocabulary_matches


def _data(widths=(2, 1), seq_len=12) -> MarkovCrossDataModule:
    data = MarkovCrossDataModule(student_widths=list(widths), num_train=64, num_val=8, num_test=8, seq_len=seq_len,
                                 train_subset=16, batch_size=4)
    data.setup()
    return data


def test_the_student_reads_pairs_and_singles_of_the_teachers_symbols():
    data = _data()
    ids, mask, index, symbols = next(iter(data.train_dataloader()))
    assert ids.shape == (4, 8) and symbols.shape == (4, 12) and data.vocab_size == 32 + 32 ** 2
    row, sym = ids[0].tolist(), symbols[0].tolist()
    assert row[0] == 32 + sym[0] * 32 + sym[1] and row[1] == sym[2] and row[2] == 32 + sym[3] * 32 + sym[4]
    assert mask[0].tolist() == [False] + [True] * 7  # the first pair is context (symbols 0, 1 are no targets)
    teacher_rows, teacher_mask = (t[:16] for t in data.teacher_view.splits["train"].tensors)
    assert torch.equal(data.tokenize(teacher_rows, teacher_mask)[0], data.split_inputs("train"))  # the same rows


def test_the_shared_tokens_are_the_single_symbols():
    data = _data()
    t, s = vocabulary_matches(data.teacher_vocabulary(), data.student_vocabulary())
    assert t.tolist() == s.tolist() == list(range(32))


def test_the_student_truth_is_the_chain_of_the_sources_probabilities():
    data = _data()
    ids, mask, _, symbols = next(iter(data.train_dataloader()))
    truth = data.reference(ids)
    p = data.source.probs
    assert torch.allclose(truth.sum(-1), torch.ones(truth.shape[:2]), atol=1e-5)
    x = symbols[1].tolist()
    assert truth[1, 0, x[2]] == pytest.approx(p[x[0], x[1], x[2]], rel=1e-5)           # a single after a pair
    assert truth[1, 1, 32 + x[3] * 32 + x[4]] == pytest.approx(p[x[1], x[2], x[3]] * p[x[2], x[3], x[4]], rel=1e-5)
    read = torch.roll(ids, -1, 1)
    targets = torch.roll(mask, -1, 1)
    targets[:, -1] = False
    assert (truth.gather(-1, read[..., None])[..., 0][targets] > 0).all()  # every token read was possible


def test_the_batched_merge_is_merge_groups_on_the_byte_alignment():
    data = _data(widths=(2, 1, 1), seq_len=16)
    _, _, _, symbols = next(iter(data.train_dataloader()))
    probs = torch.softmax(torch.randn(4, 16, 32, dtype=torch.float64), -1)
    first, later = data.alignment()
    merged = merge_positions(probs, first, later, read_probabilities(probs, symbols))
    groups = align_by_byte_offsets([(t, t + 1) for t in range(16)], data.spans)
    for b in range(4):
        # group of student token j+1, predicted from the rows one before each of its teacher tokens; row j reads j+1
        read = [*symbols[b, 1:].tolist(), 0]
        rows = merge_groups(probs[b], [[t - 1 for t in g] for g, _ in groups[1:]], read)
        assert torch.allclose(merged[b, :-1], rows)


@pytest.mark.parametrize("widths, seq_len", [((3,), 12), ((2, 1), 10), ((), 12)])
def test_bad_student_widths_are_refused(widths, seq_len):
    with pytest.raises(ValueError, match="data.student_widths must be widths of 1 or 2 symbols"):
        MarkovCrossDataModule(student_widths=list(widths), seq_len=seq_len, num_train=8, num_val=2, num_test=2)


def test_the_pattern_of_single_symbols_only_aligns_one_to_one():
    data = _data(widths=(1,), seq_len=8)
    first, later = data.alignment()
    assert first[:-1].tolist() == list(range(7)) and (later == -1).all()
    assert np.array_equal(data.split_inputs("train").numpy(), data.symbol_splits["train"][:16].numpy())
