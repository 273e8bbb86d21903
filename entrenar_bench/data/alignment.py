"""Aligning two tokenizations of one text by UTF-8 byte offsets (cross-tokenizer distillation: ULD, GOLD).

Each token is a byte span ``(start, end)`` of the text. Two tokenizations agree on a split where both have a
token boundary at the same byte; between two such boundaries lies one *group*: one or more teacher tokens and
one or more student tokens covering the same bytes. A one-to-one group is a token both sides share; a
one-to-many group is a merge on one side (``"hello"`` against ``"hel" + "lo"``).

The rules, which the tests pin down:

- Walk both span lists; advance the side whose current token ends first; when both current tokens end at the
  same byte, close the group (every token read since the last group, on each side).
- A zero-width token (``start == end``: BOS, EOS and other special tokens, which cover no bytes of the text) joins
  no group: it is skipped on its side. A BOS that one tokenizer adds and the other does not therefore changes
  nothing (TRL #4392: such a token, grouped, once collapsed a whole sequence into one group).
- Bytes left over at the end on one side only (a truncated tokenization) form no group.
"""

from __future__ import annotations

from collections.abc import Sequence

Span = tuple[int, int]
Group = tuple[list[int], list[int]]  # (teacher token indices, student token indices)


def byte_spans(text: str, char_spans: Sequence[Span]) -> list[Span]:
    """Character offsets (a fast tokenizer's ``offset_mapping``) as UTF-8 byte offsets of ``text``."""
    starts = [0]
    for ch in text:
        starts.append(starts[-1] + len(ch.encode("utf-8")))
    return [(starts[a], starts[b]) for a, b in char_spans]


def align_by_byte_offsets(teacher: Sequence[Span], student: Sequence[Span]) -> list[Group]:
    """The groups of teacher and student tokens that cover the same bytes (rules in the module docstring)."""
    t_tokens = [i for i, (a, b) in enumerate(teacher) if b > a]
    s_tokens = [i for i, (a, b) in enumerate(student) if b > a]
    groups: list[Group] = []
    t_group: list[int] = []
    s_group: list[int] = []
    t = s = 0
    while t < len(t_tokens) and s < len(s_tokens):
        t_end, s_end = teacher[t_tokens[t]][1], student[s_tokens[s]][1]
        if t_end <= s_end:
            t_group.append(t_tokens[t])
            t += 1
        if s_end <= t_end:
            s_group.append(s_tokens[s])
            s += 1
        if t_end == s_end:
            groups.append((t_group, s_group))
            t_group, s_group = [], []
    return groups


def aligned_fraction(groups: Sequence[Group], teacher_tokens: int) -> float:
    """The share of the teacher's tokens that sit in one-to-one groups (the positions both sides predict alike)."""
    one_to_one = sum(1 for t, s in groups if len(t) == 1 and len(s) == 1)
    return one_to_one / teacher_tokens if teacher_tokens else 0.0
