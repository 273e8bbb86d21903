"""A corpus read by the teacher through its tokenizer and by the student through its own (``data.student_tokenizer``,
``data/student_tokenizer.py``), the two tokenizations aligned by byte offsets (``data/alignment.py``).

- *Rows.* The teacher's rows are exactly the plain corpus module's blocks (the same packing, split by the same
  ``split_seed``: ``teacher_view`` holds them, and the teacher cached for the plain corpus is this one's). Every
  document's text sits at its own place in one byte stream, its end token on one byte of its own after it (so the
  two end tokens, both ``<|endoftext|>`` for a trained BPE, form a group like any other token). A student row is the
  student's tokens of the same documents (each document tokenised whole) that lie inside the teacher block's bytes; a
  token that straddles the block's edge is left out. Student rows are right-padded to the longest; every student
  token but a row's first is a target.
- *The student's tokenizer* is trained on the training split's text only (the text of its blocks), or loaded from
  a directory; a tokenizer that does not give the corpus back round trip is refused.
- *Alignment, per student position* ``j`` (which predicts student token ``j+1``): where token ``j+1`` is alone on the
  student side of its byte group and the group holds 1 to ``MAX_GROUP`` teacher tokens ``t₁ … t_m`` (``t₁ > 0``),
  the teacher's rows ``t₁−1`` (``first``) and ``t₂−1 … t_m−1`` (``later``) predict it, merged by GOLD's chain rule
  (``distill/cross_term.py``). Elsewhere (the student splits finer than the teacher, a larger group, a token
  outside every group) the position is not aligned: it learns from cross-entropy alone. ``aligned_fraction`` is the
  share of target positions that are aligned.
- Token spans come from each fast tokenizer's own offsets with its post-processor removed (no offset trimming:
  ``"Ġworld"`` covers its space), made monotone (a piece of a character split across tokens covers nothing new and
  joins no group), as UTF-8 byte offsets.

Batches are ``(ids, mask, index, teacher ids, first, later, aligned, target bytes)``; ``target bytes`` (each student
token's width in bytes, the end token 1) gives the held-out bits per byte.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from entrenar_bench.data.alignment import Span, align_by_byte_offsets, byte_spans
from entrenar_bench.data.corpus import PromptResponse, TextDocument, read_documents
from entrenar_bench.data.encoding import document_specials, encode_documents
from entrenar_bench.data.packing import Unit, pack_blocks
from entrenar_bench.data.student_tokenizer import bpe_size, check_directory, check_round_trip, trained_bpe
from entrenar_bench.data.text import CorpusDataModule
from entrenar_bench.data.tokenizer import load_tokenizer

MAX_GROUP = 4  # teacher tokens merged for one student token at most


def token_spans(tok, texts: Sequence[str]) -> tuple[list[list[int]], list[list[Span]]]:
    """Each text's ids (``tok(texts, add_special_tokens=False)``'s) and its tokens as byte spans of that text (module
    docstring: untrimmed, monotone)."""
    backend = copy.deepcopy(tok.backend_tokenizer)
    backend.post_processor = None
    encodings = backend.encode_batch(list(texts), add_special_tokens=False)
    expected = tok(list(texts), add_special_tokens=False, verbose=False)["input_ids"] if texts else []
    spans = []
    for text, encoding, ids in zip(texts, encodings, expected):
        if encoding.ids != ids:
            raise ValueError(f"tokenizer {tok.name_or_path}: its offsets' encoding differs from its ids")
        end, monotone = 0, []
        for _, b in encoding.offsets:  # each token from where the last one ended
            b = max(b, end)
            monotone.append((end, b))
            end = b
        spans.append(byte_spans(text, monotone))
    return expected, spans


def group_targets(teacher: Sequence[Span], student: Sequence[Span]) -> dict[int, list[int]]:
    """``{student row j: the teacher tokens of the group student token j+1 is alone in}`` where aligned (module
    docstring)."""
    return {s_tokens[0] - 1: t_tokens for t_tokens, s_tokens in align_by_byte_offsets(teacher, student)
            if len(s_tokens) == 1 and s_tokens[0] > 0 and 0 < len(t_tokens) <= MAX_GROUP and t_tokens[0] > 0}


def _per_target(widths: np.ndarray, mask: np.ndarray) -> float:
    """Mean bytes of the target tokens."""
    return float(widths[mask].sum() / max(1, mask.sum()))


class CrossCorpusDataModule(CorpusDataModule):
    """``CorpusDataModule``'s settings plus ``student_tokenizer`` (``bpe:<size>`` or a directory) and ``cache_dir``
    (where a trained one is cached); the teacher's view (``teacher_view``) is the plain corpus module's."""

    task = "causal_lm_corpus_cross"
    content_keys = ("path", "tokenizer", "student_tokenizer")

    def __init__(self, student_tokenizer: str, cache_dir: str | None = None, **kwargs):
        super().__init__(student_tokenizer=student_tokenizer, cache_dir=cache_dir, **kwargs)
        self.teacher_view = CorpusDataModule(**kwargs)
        self.student_tokenizer_dir: Path | None = None
        self.cross: dict[str, tuple[torch.Tensor, ...]] = {}
        self.aligned_fraction = 0.0
        self.bytes_per_target: dict[str, dict[str, float]] = {}  # per split, each side's bytes per target token

    @staticmethod
    def teacher_config(data: dict) -> dict:
        """The data config as the plain corpus run has it (no student tokenizer): the teacher store's key
        (``teacher_signal/plan.py``), so that the plain run's store serves this one."""
        return {**data, "student_tokenizer": None}

    # the two tokenizations
    def teacher_vocabulary(self) -> dict[str, int]:
        return self.teacher_view.loaded_tokenizer.get_vocab()

    def student_vocabulary(self) -> dict[str, int]:
        return self.loaded_tokenizer.get_vocab()

    def _teacher_blocks(self, documents: list[TextDocument]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The plain module's blocks: ``(ids, mask, spans (N, L, 2) in the byte stream, each document's base)``."""
        view, texts = self.teacher_view, [d.text for d in documents]
        tok = view.loaded_tokenizer = load_tokenizer(view.tokenizer, texts)
        view.vocab_size, view.specials = len(tok), document_specials(tok)
        units = encode_documents(tok, documents, self.block_size, False, str(self.path), self.pair_separator).units
        lengths = [len(t.encode("utf-8")) for t in texts]
        bases = np.cumsum([0, *[n + 1 for n in lengths]])[:-1]  # each document's bytes, then its end token's byte
        head = [] if view.specials.bos is None else [(0, 0)]
        flat_ids, flat_spans, index_units = [], [], []
        for unit, spans, base, n in zip(units, token_spans(tok, texts)[1], bases, lengths):
            spans = head + spans + [(n, n + 1)]
            if len(spans) != len(unit.ids):
                raise ValueError(f"tokenizer {view.tokenizer}: {len(unit.ids)} ids but {len(spans)} spans a document")
            start = len(flat_ids)
            flat_ids += unit.ids
            flat_spans += [(base + a, base + b) for a, b in spans]
            index_units.append(Unit(list(range(start, len(flat_ids))), unit.targets))
        index, mask = pack_blocks(index_units, self.block_size, -1)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        ids = np.where(index >= 0, np.asarray(flat_ids)[index.clip(0)], pad)
        spans = np.asarray(flat_spans)[index.clip(0)]
        last = np.where(index >= 0, spans[..., 1], -1).max(1)
        spans[index < 0] = last[(index < 0).nonzero()[0], None]  # padding: zero-width at the row's end
        return ids, mask, spans, bases

    def _student_tokenizer(self, texts: list[str], teacher_spans: np.ndarray, train_rows: np.ndarray):
        """The student's tokenizer: trained on the training rows' text (``bpe:<size>``) or a checked directory."""
        size = bpe_size(self.student_tokenizer)
        if size is None:
            directory = check_directory(self.student_tokenizer)
            check_round_trip(directory, texts, self.student_tokenizer)
        else:
            stream = "\0".join(texts).encode("utf-8") + b"\0"  # a document's end token on its own byte
            pieces = []
            for row in train_rows:
                lo, hi = int(teacher_spans[row, :, 0].min()), int(teacher_spans[row, :, 1].max())
                pieces += [p for p in stream[lo:hi].decode("utf-8", errors="ignore").split("\0") if p]
            directory = trained_bpe(Path(self.cache_dir or "."), size, pieces)
        self.student_tokenizer_dir = directory
        return load_tokenizer(str(directory), texts)

    def _student_rows(self, texts: list[str], bases: np.ndarray, teacher_spans: np.ndarray):
        """Per teacher block: the student's ids, target mask, spans, and its alignment (module docstring)."""
        tok = self.loaded_tokenizer
        end = tok.eos_token_id
        ids, spans = [], []
        for text, base, doc_ids, doc in zip(texts, bases, *token_spans(tok, texts)):
            ids += doc_ids + [end]
            n = len(text.encode("utf-8"))
            spans += [(base + a, base + b) for a, b in doc] + [(base + n, base + n + 1)]
        ids, spans = np.asarray(ids), np.asarray(spans)
        rows = []
        for t_spans in teacher_spans:
            lo, hi = t_spans[:, 0].min(), t_spans[:, 1].max()
            first, last = np.searchsorted(spans[:, 0], lo), np.searchsorted(spans[:, 1], hi, side="right")
            s_spans = spans[first:last]
            inside = (t_spans[:, 0] >= (s_spans[0, 0] if len(s_spans) else hi)) & \
                (t_spans[:, 1] <= (s_spans[-1, 1] if len(s_spans) else lo))
            teacher = [tuple(s) if keep else (s[0], s[0]) for s, keep in zip(t_spans.tolist(), inside)]
            groups = group_targets(teacher, [tuple(s) for s in s_spans.tolist()])
            rows.append((ids[first:last], s_spans[:, 1] - s_spans[:, 0], groups))
        return rows

    def _student_arrays(self, rows, pad: int) -> tuple[np.ndarray, ...]:
        length = max(len(r[0]) for r in rows)
        shape = (len(rows), length)
        ids, widths = np.full(shape, pad, dtype=np.int64), np.zeros(shape, dtype=np.int64)
        mask, aligned = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
        first, later = np.zeros(shape, dtype=np.int64), np.full((*shape, MAX_GROUP - 1), -1, dtype=np.int64)
        for r, (row_ids, row_widths, groups) in enumerate(rows):
            ids[r, :len(row_ids)], widths[r, :len(row_ids)] = row_ids, row_widths
            mask[r, 1:len(row_ids)] = True
            for j, t_tokens in groups.items():
                aligned[r, j], first[r, j] = True, t_tokens[0] - 1
                later[r, j, :len(t_tokens) - 1] = [t - 1 for t in t_tokens[1:]]
        return ids, mask, first, later, aligned, widths

    # splits and batches
    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        documents = read_documents(self.path, self.document_separator)
        if any(isinstance(d, PromptResponse) for d in documents):
            raise ValueError(f"data.student_tokenizer reads text documents; corpus {self.path} holds prompt/response "
                             "pairs")
        texts = [d.text for d in documents]
        t_ids, t_mask, t_spans, bases = self._teacher_blocks(documents)
        order = self.split_order(len(t_ids))
        self.teacher_view.split_rows(t_ids, t_mask)
        tok = self.loaded_tokenizer = self._student_tokenizer(texts, t_spans, order["train"])
        self.vocab_size, self.specials = len(tok), document_specials(tok)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        ids, mask, first, later, aligned, widths = self._student_arrays(self._student_rows(texts, bases, t_spans), pad)
        self.split_rows(ids, mask)
        for name, rows in order.items():
            self.cross[name] = tuple(torch.as_tensor(a[rows]) for a in (t_ids, first, later, aligned, widths))
        t_widths = t_spans[..., 1] - t_spans[..., 0]
        self.bytes_per_target = {name: {"student": _per_target(widths[rows], mask[rows]),
                                        "teacher": _per_target(t_widths[rows], t_mask[rows])}
                                 for name, rows in order.items()}
        train = order["train"][:self.num_train]
        targets = mask[train, 1:]  # position j predicts token j+1
        self.aligned_fraction = float((aligned[train, :-1] & targets).sum() / max(1, targets.sum()))

    def batch_tensors(self, split: str, rows: int) -> tuple[torch.Tensor, ...]:
        """``(ids, mask, index, teacher ids, first, later, aligned, target bytes)`` of ``split``'s first ``rows``."""
        return (*super().batch_tensors(split, rows), *(t[:rows] for t in self.cross[split]))
