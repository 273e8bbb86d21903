"""The Markov source of ``markov.py`` read through two tokenizations: the teacher reads it symbol by symbol (``V``
ids), the student through tokens of one or two symbols in a fixed repeating pattern of widths
(``student_widths``, e.g. ``[2, 1]``: a pair, a single, a pair, …). The student's vocabulary holds the ``V`` single
symbols (ids ``0 … V−1``, the teacher's ids: the tokens both vocabularies share) and the ``V²`` pairs
(``V + a·V + b``): ``V + V²`` ids. Cross-tokenizer distillation with a known truth.

Symbol ``t`` is byte ``t`` of the text; the two tokenizations are aligned by ``alignment.align_by_byte_offsets``
(a pair against two teacher tokens: a one-to-many group; a single: one-to-one). The true next-token distribution
of the student is known exactly: with ``(c₁, c₂)`` the last two symbols read and the pattern saying the next
token's width, ``P(a | c₁, c₂)`` on the single ``a``, or ``P(a | c₁, c₂)·P(b | c₂, a)`` on the pair ``ab``.

Batches are ``(student ids, target mask, index, teacher symbols)``; a student token is a target where every symbol
it covers is one. The teacher (``teacher_view``: a ``MarkovDataModule`` of the same settings, the same rows) trains
and is measured on the symbols alone.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import TensorDataset

from entrenar_bench.data.alignment import Span, align_by_byte_offsets
from entrenar_bench.data.markov import MarkovDataModule

WIDTHS = (1, 2)


def symbol_name(a: int) -> str:
    return f"<{a}>"


class MarkovCrossDataModule(MarkovDataModule):
    """``student_widths``: the student's token widths, repeated over each sequence of ``seq_len`` symbols (a
    multiple of their sum); every other setting is ``MarkovDataModule``'s, shared with the teacher's view."""

    task = "causal_lm_cross"

    def __init__(self, student_widths: list[int] | tuple[int, ...] = (2, 1), **kwargs):
        super().__init__(**kwargs)
        self.widths = tuple(int(w) for w in student_widths)
        if not self.widths or any(w not in WIDTHS for w in self.widths) or self.seq_len % sum(self.widths):
            raise ValueError(f"data.student_widths must be widths of 1 or 2 symbols whose sum divides data.seq_len "
                             f"({self.seq_len}), got {list(self.widths)}")
        self.teacher_view = MarkovDataModule(**kwargs)
        self.symbols = self.teacher_view.vocab_size
        self.vocab_size = self.symbols + self.symbols ** 2
        widths = np.resize(self.widths, self.seq_len // sum(self.widths) * len(self.widths))
        ends = np.cumsum(widths)
        self.spans: list[Span] = [(int(e - w), int(e)) for e, w in zip(ends, widths)]
        self.token_widths = torch.as_tensor(widths)
        pair = self.source.probs[:, :, :, None] * self.source.probs[None, :, :, :]  # [c1, c2, a, b]
        self.pair_table = torch.as_tensor(pair.reshape(self.symbols, self.symbols, -1), dtype=torch.float32)
        self.single_table = torch.as_tensor(self.source.probs, dtype=torch.float32)
        self.reference = self.next_token_probs

    # the two vocabularies and their alignment
    def teacher_vocabulary(self) -> dict[str, int]:
        return {symbol_name(a): a for a in range(self.symbols)}

    def student_vocabulary(self) -> dict[str, int]:
        singles = self.teacher_vocabulary()
        pairs = {symbol_name(a) + symbol_name(b): self.symbols + a * self.symbols + b
                 for a in range(self.symbols) for b in range(self.symbols)}
        return {**singles, **pairs}

    def groups(self) -> list[tuple[list[int], list[int]]]:
        """The byte-offset groups of one sequence's two tokenizations (every sequence has the same)."""
        return align_by_byte_offsets([(t, t + 1) for t in range(self.seq_len)], self.spans)

    def alignment(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(first (T_s,), later (T_s, 1))``: the teacher rows that predict the token each student row predicts
        (row ``j`` predicts token ``j+1``; its group's first teacher token ``t`` is predicted by row ``t−1``, each
        later one by the row before it); −1 where none (the last row, and singles' ``later``)."""
        groups = self.groups()
        by_student = {s[0]: t for t, s in groups}
        first = torch.zeros(len(self.spans), dtype=torch.long)
        later = torch.full((len(self.spans), 1), -1, dtype=torch.long)
        for j in range(len(self.spans) - 1):
            teacher_tokens = by_student[j + 1]
            first[j] = teacher_tokens[0] - 1
            later[j, :len(teacher_tokens) - 1] = torch.as_tensor([t - 1 for t in teacher_tokens[1:]], dtype=torch.long)
        return first, later

    # the student's tokens
    def tokenize(self, symbols: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(ids, mask)`` of the student's tokens from ``(N, seq_len)`` symbols and their target mask."""
        starts = torch.as_tensor([a for a, _ in self.spans])
        pair = self.token_widths == 2
        second = (starts + 1).clamp_max(self.seq_len - 1)
        head = symbols[:, starts]
        ids = torch.where(pair, self.symbols + head * self.symbols + symbols[:, second], head)
        targets = mask[:, starts] & (mask[:, second] | ~pair)
        return ids, targets

    def next_token_probs(self, ids: torch.Tensor) -> torch.Tensor:
        """``(B, T, V + V²)``: row ``j`` the true distribution of student token ``j+1`` given the symbols read
        (uniform over the next width's ids where fewer than two symbols were read)."""
        v = self.symbols
        pair = ids >= v
        last = torch.where(pair, (ids - v) % v, ids)
        first = torch.where(pair, (ids - v) // v, ids)
        before = torch.cat([torch.full_like(last[:, :1], -1), last[:, :-1]], dim=1)
        c1, c2 = torch.where(pair, first, before), last
        positions = torch.arange(1, ids.shape[1] + 1) % len(self.widths)
        next_pair = (torch.as_tensor(self.widths)[positions] == 2).to(ids.device)[None, :, None]
        singles = self.single_table.to(ids.device)[c1.clamp_min(0), c2]
        pairs = self.pair_table.to(ids.device)[c1.clamp_min(0), c2]
        unknown = (c1 < 0)[..., None]
        singles = torch.where(unknown, torch.full_like(singles, 1 / v), singles)
        pairs = torch.where(unknown, torch.full_like(pairs, 1 / v ** 2), pairs)
        zeros_s, zeros_p = torch.zeros_like(singles), torch.zeros_like(pairs)
        return torch.cat([torch.where(next_pair, zeros_s, singles), torch.where(next_pair, pairs, zeros_p)], dim=-1)

    # splits and batches
    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        self.teacher_view.setup(stage)
        self.symbol_splits = {name: data.tensors[0] for name, data in self.teacher_view.splits.items()}
        for name, data in self.teacher_view.splits.items():
            self.splits[name] = TensorDataset(*self.tokenize(*data.tensors))
        self.num_train = self.teacher_view.num_train

    def batch_tensors(self, split: str, rows: int) -> tuple[torch.Tensor, ...]:
        """``(ids, mask, index, symbols)``: the student's tokens and the teacher's of the same rows."""
        return (*super().batch_tensors(split, rows), self.symbol_splits[split][:rows])
