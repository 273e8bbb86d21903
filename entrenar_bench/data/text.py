"""Token data modules for causal language models: generated sequences or a user's own corpus.

Contract (shared with the image modules of ``arrays.py``): ``task`` says which kind of model and
objective the data needs ("causal_lm" here), ``model_kwargs()`` what the model builder is given
(``vocab_size``), ``teacher_free_keys`` which config keys a cached teacher does not depend on (changing
them does not retrain it): the student's subset, the evaluation batch size. Every batch is
``(input_ids, mask, index)``: ``(B, L)`` token ids, ``mask[b, t]`` True where token t is a target of the loss (False at position 0, on padding and on
prompt positions), and each sequence's row in its split (to look up cached teacher outputs).
Sequences are right-padded: a causal model's outputs at real positions never see the padding.

The teacher (``pretrain_dataloader``) trains on the whole training split; the student
(``train_dataloader``) on its first ``train_subset`` sequences. Nothing here downloads anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

SPLITS = ("train", "val", "test")


class TokenDataModule(L.LightningDataModule):
    """Holds ``(ids, mask)`` per split as tensors, split once by ``split_seed``; batches gathered by index."""

    task = "causal_lm"
    teacher_free_keys = ("train_subset", "eval_batch_size")

    def __init__(self, batch_size: int = 32, val_fraction: float = 0.1, test_fraction: float = 0.1,
                 split_seed: int = 0, train_subset: int | None = None, eval_batch_size: int | None = None):
        """``eval_batch_size``: sequences per validation/test batch (null: ``batch_size``); larger ones
        evaluate faster and give the same token means."""
        super().__init__()
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.split_seed = split_seed
        self.train_subset = train_subset
        self.splits: dict[str, TensorDataset] = {}
        self.vocab_size = 0
        self.num_train = 0
        # next-token probabilities of the true source, (B, L) ids -> (B, L, V), where it is known
        self.reference: Callable[[torch.Tensor], torch.Tensor] | None = None

    def load_tokens(self) -> tuple[np.ndarray, np.ndarray]:
        """All sequences: ``(N, L)`` int64 ids and the ``(N, L)`` bool target mask; sets ``vocab_size``."""
        raise NotImplementedError

    def split_sizes(self, total: int) -> tuple[int, int, int]:
        n_val, n_test = round(total * self.val_fraction), round(total * self.test_fraction)
        return total - n_val - n_test, n_val, n_test

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        ids, mask = self.load_tokens()
        sizes = self.split_sizes(len(ids))
        if min(sizes) < 1:
            raise ValueError(f"{len(ids)} sequences are too few for train/val/test splits of {sizes}")
        order = np.random.default_rng(self.split_seed).permutation(len(ids))
        bounds = np.cumsum([0, *sizes])
        for name, lo, hi in zip(SPLITS, bounds[:-1], bounds[1:]):
            rows = order[lo:hi]
            self.splits[name] = TensorDataset(torch.as_tensor(ids[rows]), torch.as_tensor(mask[rows]))
        subset = sizes[0] if self.train_subset is None else min(self.train_subset, sizes[0])
        self.num_train = subset

    def model_kwargs(self) -> dict:
        return {"vocab_size": self.vocab_size}

    def _loader(self, split: str, shuffle: bool, rows: int | None = None) -> DataLoader:
        ids, mask = self.splits[split].tensors
        rows = len(ids) if rows is None else rows
        dataset = TensorDataset(ids[:rows], mask[:rows], torch.arange(rows))
        sampler = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
        size = self.batch_size if shuffle else self.eval_batch_size
        return DataLoader(dataset, batch_size=None, sampler=BatchSampler(sampler, size, drop_last=False))

    def train_dataloader(self) -> DataLoader:
        """The student's training sequences (the first ``train_subset``), shuffled."""
        return self._loader("train", shuffle=True, rows=self.num_train)

    def pretrain_dataloader(self) -> DataLoader:
        """The whole training split, shuffled: what a cached teacher trains on."""
        return self._loader("train", shuffle=True)

    def indexed_train_dataloader(self) -> DataLoader:
        """The student's batches with their row index (every token batch carries it)."""
        return self.train_dataloader()

    def train_inputs(self) -> torch.Tensor:
        """The student's training ids, in index order."""
        return self.splits["train"].tensors[0][:self.num_train]

    def split_inputs(self, split: str) -> torch.Tensor:
        """A split's ids in index order: the student's subset for ``train``."""
        return self.train_inputs() if split == "train" else self.splits[split].tensors[0]

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


class CharTokenizer:
    """One id per character of the corpus (sorted), id 0 for padding: the embedded fallback tokenizer."""

    def __init__(self, texts: Sequence[str]):
        chars = sorted(set("".join(texts)))
        self.index = {c: i + 1 for i, c in enumerate(chars)}
        self.pad_token_id = 0
        self.eos_token_id = None

    def __len__(self) -> int:
        return len(self.index) + 1

    def encode(self, text: str) -> list[int]:
        return [self.index[c] for c in text]


def load_tokenizer(tokenizer: str, texts: Sequence[str]):
    """``char`` (built from the corpus) or a local directory for ``AutoTokenizer`` (never downloaded)."""
    if tokenizer == "char":
        return CharTokenizer(texts)
    if not Path(tokenizer).is_dir():
        raise ValueError(f"tokenizer must be 'char' or a local tokenizer directory; {tokenizer} is not a directory")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer, local_files_only=True)


def _encode(tok, text: str) -> list[int]:
    if isinstance(tok, CharTokenizer):
        return tok.encode(text)
    return tok.encode(text, add_special_tokens=False)


def read_corpus(path: Path) -> list[dict]:
    """Documents of a ``.jsonl`` file (``text``, or ``prompt`` and ``response``) or of a plain-text file
    (one document, ``text``). One line of a bad ``.jsonl``: ValueError naming it."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".jsonl":
        return [{"text": text}]
    documents = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}:{number}: not JSON ({e.msg})") from None
        if not isinstance(record, dict) or not ({"text"} <= record.keys() or {"prompt", "response"} <= record.keys()):
            raise ValueError(f"{path}:{number}: expected an object with 'text', or 'prompt' and 'response'")
        documents.append(record)
    if not documents:
        raise ValueError(f"{path}: no documents")
    return documents


class CorpusDataModule(TokenDataModule):
    """A user's corpus on disk, in blocks of ``block_size`` tokens, split by ``split_seed``.

    ``path``: a plain-text file (one document) or JSON lines with ``text``, or with ``prompt`` and
    ``response`` (the prompt's positions are not targets: only the response is learnt).
    ``tokenizer``: a local Hugging Face tokenizer directory, or ``char``. A document longer than a
    block is cut into consecutive blocks; the last one is right-padded.
    """

    def __init__(self, path: str, tokenizer: str = "char", block_size: int = 128, **kwargs):
        super().__init__(**kwargs)
        self.path = Path(path)
        self.tokenizer = tokenizer
        self.block_size = block_size

    def load_tokens(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.path.is_file():
            raise FileNotFoundError(f"corpus {self.path} not found")
        documents = read_corpus(self.path)
        tok = load_tokenizer(self.tokenizer, [v for d in documents for v in d.values() if isinstance(v, str)])
        self.vocab_size = len(tok)
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        blocks: list[tuple[list[int], list[bool]]] = []
        for document in documents:
            if "text" in document:
                ids = _encode(tok, document["text"])
                targets = [True] * len(ids)
            else:
                prompt, response = _encode(tok, document["prompt"]), _encode(tok, document["response"])
                ids = prompt + response + ([tok.eos_token_id] if tok.eos_token_id is not None else [])
                targets = [False] * len(prompt) + [True] * (len(ids) - len(prompt))
            for start in range(0, len(ids), self.block_size):
                blocks.append((ids[start:start + self.block_size], targets[start:start + self.block_size]))
        ids = np.full((len(blocks), self.block_size), pad, dtype=np.int64)
        mask = np.zeros((len(blocks), self.block_size), dtype=bool)
        for row, (block, targets) in enumerate(blocks):
            ids[row, :len(block)] = block
            mask[row, :len(block)] = targets
        mask[:, 0] = False  # nothing predicts a block's first token
        return ids, mask
