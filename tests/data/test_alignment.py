"""Byte-offset alignment of two tokenizations (data/alignment.py): merges both ways, a BOS on one side only,
Unicode, and any two segmentations of any text (Hypothesis)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from entrenar_bench.data.alignment import aligned_fraction, align_by_byte_offsets, byte_spans


def spans(pieces: list[str], start: int = 0) -> list[tuple[int, int]]:
    out = []
    for piece in pieces:
        end = start + len(piece.encode("utf-8"))
        out.append((start, end))
        start = end
    return out


def test_merges_both_ways():
    teacher = spans(["hel", "lo", " world"])
    student = spans(["hello", " wor", "ld"])
    assert align_by_byte_offsets(teacher, student) == [([0, 1], [0]), ([2], [1, 2])]


def test_one_to_one_tokens_are_their_own_groups():
    pieces = ["The", " cat", " sat"]
    groups = align_by_byte_offsets(spans(pieces), spans(pieces))
    assert groups == [([0], [0]), ([1], [1]), ([2], [2])]
    assert aligned_fraction(groups, 3) == 1.0


def test_a_bos_on_one_side_only_joins_no_group():
    teacher = [(0, 0), *spans(["The", " cat"])]  # BOS at (0, 0), then the text
    student = spans(["Th", "e", " cat"])
    assert align_by_byte_offsets(teacher, student) == [([1], [0, 1]), ([2], [2])]
    assert align_by_byte_offsets(student, teacher) == [([0, 1], [1]), ([2], [2])]


def test_an_eos_at_the_end_joins_no_group():
    teacher = [*spans(["ab", "c"]), (3, 3)]
    assert align_by_byte_offsets(teacher, spans(["a", "bc"])) == [([0, 1], [0, 1])]


def test_unicode_is_aligned_by_bytes_not_characters():
    text = "naïve café ☕"
    # character offsets, as a fast tokenizer's offset_mapping gives them: "na" "ïve" " caf" "é" " ☕"
    teacher = byte_spans(text, [(0, 2), (2, 5), (5, 9), (9, 10), (10, 12)])
    student = byte_spans(text, [(0, 5), (5, 10), (10, 11), (11, 12)])  # "naïve" " café" " " "☕"
    assert teacher[1] == (2, 6) and teacher[-1] == (12, 16)  # ï and é are 2 bytes, ☕ 3
    assert align_by_byte_offsets(teacher, student) == [([0, 1], [0]), ([2, 3], [1]), ([4], [2, 3])]


def _segment(text: str, cuts: list[int]) -> list[str]:
    bounds = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    return [text[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


@given(st.text(min_size=1, max_size=40), st.lists(st.integers(0, 60), max_size=20),
       st.lists(st.integers(0, 60), max_size=20))
def test_any_two_segmentations_group_into_equal_byte_runs(text, cuts_a, cuts_b):
    a, b = _segment(text, cuts_a), _segment(text, cuts_b)
    groups = align_by_byte_offsets(spans(a), spans(b))
    assert sorted(i for t, _ in groups for i in t) == list(range(len(a)))  # every token in exactly one group
    assert sorted(i for _, s in groups for i in s) == list(range(len(b)))
    for t, s in groups:
        assert "".join(a[i] for i in t) == "".join(b[i] for i in s)
