"""Token units packed into fixed-size blocks, as language-model training prepares a corpus.

A unit is one document's ids with a target flag per id. Units fill blocks in order: a text document's
ids flow on into the next block when the current one is full (its continuation starts a block, whose
first position nothing predicts); a prompt/response pair is kept whole inside one block, so its response
always sees its prompt: when it does not fit what is left of the current block, that block is closed
with padding and the pair starts the next. Padding is never a target, whatever its id (it may equal
EOS: the mask decides), and the first position of every block is never a target.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Unit:
    """``ids`` with ``targets[i]`` True where ``ids[i]`` is learnt; ``whole``: never split across blocks."""

    ids: list[int]
    targets: list[bool]
    whole: bool = False


@dataclass(frozen=True)
class FittedPair:
    """A pair cut to one block: ``prompt_cut`` where the prompt lost its start, ``response_cut`` its end."""

    unit: Unit
    prompt_cut: bool
    response_cut: bool


def fit_pair(prompt: list[int], response: list[int], block_size: int) -> FittedPair:
    """A prompt/response pair in at most ``block_size`` ids. Longer: the prompt is kept and the response
    truncated (its EOS goes with its end); a prompt that leaves no room for one response id is cut from
    the left to ``block_size - 1`` ids (the end of a prompt, next to the response, matters most)."""
    prompt_cut = len(prompt) > block_size - 1
    if prompt_cut:
        prompt = prompt[len(prompt) - (block_size - 1):]
    room = block_size - len(prompt)
    response_cut = len(response) > room
    response = response[:room]
    return FittedPair(Unit(prompt + response, [False] * len(prompt) + [True] * len(response), whole=True),
                      prompt_cut, response_cut)


def pack_blocks(units: Iterable[Unit], block_size: int, pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """``(N, block_size)`` int64 ids and the bool target mask of the packed units (a ``whole`` unit must
    fit a block: see :func:`fit_pair`)."""
    blocks: list[tuple[list[int], list[bool]]] = []
    ids: list[int] = []
    targets: list[bool] = []

    def close() -> None:
        nonlocal ids, targets
        if ids:
            blocks.append((ids, targets))
        ids, targets = [], []

    for unit in units:
        if unit.whole:
            if len(unit.ids) > block_size:
                raise ValueError(f"a whole unit of {len(unit.ids)} ids does not fit a block of {block_size}")
            if len(ids) + len(unit.ids) > block_size:
                close()
        start = 0
        while start < len(unit.ids):
            take = block_size - len(ids)
            ids += unit.ids[start:start + take]
            targets += unit.targets[start:start + take]
            start += take
            if len(ids) == block_size:
                close()
    close()
    out_ids = np.full((len(blocks), block_size), pad_id, dtype=np.int64)
    out_mask = np.zeros((len(blocks), block_size), dtype=bool)
    for row, (block, block_targets) in enumerate(blocks):
        out_ids[row, :len(block)] = block
        out_mask[row, :len(block)] = block_targets
    out_mask[:, 0] = False  # nothing predicts a block's first token
    return out_ids, out_mask
