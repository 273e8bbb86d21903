"""Packing token units into blocks: documents flow across blocks, pairs stay whole with their prompt, padding
and block starts are never targets; a pair longer than a block keeps its prompt (Hypothesis checks the layout)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from entrenar_bench.data.packing import Unit, fit_pair, pack_blocks

PAD = 0


def test_a_pair_that_fits_is_unchanged_and_only_its_response_is_learnt():
    fitted = fit_pair([1, 2, 3], [4, 5, 9], block_size=8)
    assert fitted.unit == Unit([1, 2, 3, 4, 5, 9], [False] * 3 + [True] * 3, whole=True)
    assert not fitted.prompt_cut and not fitted.response_cut


def test_a_pair_longer_than_a_block_keeps_its_prompt_and_truncates_its_response():
    fitted = fit_pair([1, 2, 3, 4, 5], [6, 7, 8, 9], block_size=6)          # 9 (its EOS) goes with the end
    assert fitted.unit.ids == [1, 2, 3, 4, 5, 6] and fitted.unit.targets == [False] * 5 + [True]
    assert fitted.response_cut and not fitted.prompt_cut


def test_a_prompt_longer_than_a_block_loses_its_start():
    fitted = fit_pair(list(range(1, 11)), [20, 21], block_size=4)
    assert fitted.unit.ids == [8, 9, 10, 20] and fitted.unit.targets == [False, False, False, True]
    assert fitted.prompt_cut and fitted.response_cut


def test_documents_flow_across_blocks_and_pairs_start_a_block_when_they_do_not_fit():
    units = [Unit([1, 2, 3, 4, 5, 9], [True] * 6),                         # a document and its EOS 9: flows on
             fit_pair([5], [6, 9], 4).unit,                                 # 3 ids, 2 left: starts block 3
             Unit([7, 9], [True] * 2)]                                      # fills block 3, flows into block 4
    ids, mask = pack_blocks(units, block_size=4, pad_id=PAD)
    assert ids.tolist() == [[1, 2, 3, 4], [5, 9, PAD, PAD], [5, 6, 9, 7], [9, PAD, PAD, PAD]]
    assert mask.tolist() == [[False, True, True, True], [False, True, False, False], [False, True, True, True],
                             [False, False, False, False]]                 # no block's first token is a target


def test_a_pair_that_does_not_fit_the_rest_closes_the_block_with_padding_never_a_target():
    ids, mask = pack_blocks([Unit([1, 2], [True, True]), fit_pair([3, 3], [4, 4], 4).unit], 4, pad_id=9)
    assert ids.tolist() == [[1, 2, 9, 9], [3, 3, 4, 4]]                       # padding may equal any id ...
    assert not mask[ids == 9].any() and mask.sum() == 3                       # ... the mask decides


UNITS = st.lists(st.one_of(
    st.lists(st.integers(1, 50), min_size=1, max_size=20).map(lambda ids: Unit(ids, [True] * len(ids))),
    st.tuples(st.lists(st.integers(1, 50), max_size=12), st.lists(st.integers(1, 50), min_size=1, max_size=12))),
    min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(raw=UNITS, block_size=st.integers(2, 10))
def test_packing_keeps_every_token_in_order_and_every_pair_in_one_block(raw, block_size):
    units = [u if isinstance(u, Unit) else fit_pair(*u, block_size).unit for u in raw]
    ids, mask = pack_blocks(units, block_size, pad_id=PAD)
    real = ids != PAD  # test ids are >= 1
    assert ids.shape[1] == block_size and real[:, 0].all()                  # no empty block, no gap before a token
    assert ids[real].tolist() == [i for u in units for i in u.ids]         # nothing lost, reordered or repeated
    assert not mask[~real].any() and not mask[:, 0].any()
    expected = np.array([t for u in units for t in u.targets])
    expected[np.cumsum([0, *real.sum(axis=1)])[:-1]] = False               # a block's first token: no target
    assert mask[real].tolist() == expected.tolist()                         # every other flag as the unit says
    rows = np.repeat(np.arange(len(ids)), real.sum(axis=1))                 # the block of each real token
    position = 0
    for unit in units:
        span = rows[position:position + len(unit.ids)]
        position += len(unit.ids)
        if unit.whole:
            assert (span == span[0]).all()                                  # a pair never straddles blocks
    assert (real.sum(axis=1)[:-1] < block_size).sum() <= sum(u.whole for u in units)  # padding only before a pair
