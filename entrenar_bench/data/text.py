"""Token data modules for causal language models: generated sequences or a user's own corpus.

Contract (shared with the image modules of ``arrays.py``): ``task`` says which kind of model and
objective the data needs ("causal_lm" here), ``model_kwargs()`` what the model builder is given
(``vocab_size``), ``teacher_free_keys`` which config keys a cached teacher does not depend on (changing
them does not retrain it): the student's subset, the evaluation batch size; ``content_keys`` which keys
name files the data is made of (a corpus, a tokenizer directory: every cache keys their contents' digests).
Every batch is ``(input_ids, mask, index)``: ``(B, L)`` token ids, ``mask[b, t]`` True where token t is a target of
the loss (False at position 0, on padding and on prompt positions; ``mask.sum()`` is the batch's
number of target tokens), and each sequence's row in its split (to look up cached teacher outputs).
Sequences are right-padded: a causal model's outputs at real positions never see the padding, and
only the mask says which ids are padding (the padding id may equal the EOS id).

The teacher (``pretrain_dataloader``) trains on the whole training split; the student
(``train_dataloader``) on its first ``train_subset`` sequences. Nothing here downloads anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from entrenar_bench.data.corpus import BLANK_LINE, BLOCK_SIZE, PAIR_SEPARATOR, document_texts, read_documents
from entrenar_bench.data.encoding import Specials, document_specials, encode_documents
from entrenar_bench.data.packing import pack_blocks
from entrenar_bench.data.splits import TEST_FRACTION, VAL_FRACTION, split_sizes
from entrenar_bench.data.tokenizer import CHAR, load_tokenizer

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


class TokenDataModule(L.LightningDataModule):
    """Holds ``(ids, mask)`` per split as tensors, split once by ``split_seed``; batches gathered by index."""

    task = "causal_lm"
    teacher_free_keys = ("train_subset", "eval_batch_size")
    content_keys: tuple[str, ...] = ()

    def __init__(self, batch_size: int = 32, val_fraction: float = VAL_FRACTION, test_fraction: float = TEST_FRACTION,
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

    def decode(self, ids) -> str | None:
        """The text of token ids, where the data has a tokenizer (None for generated ids)."""
        return None

    def split_sizes(self, total: int) -> tuple[int, int, int]:
        return split_sizes(total, self.val_fraction, self.test_fraction)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        self.split_rows(*self.load_tokens())

    def split_order(self, total: int) -> dict[str, np.ndarray]:
        """Each split's rows of ``total`` sequences, drawn by ``split_seed``."""
        sizes = self.split_sizes(total)
        if min(sizes) < 1:
            raise ValueError(f"{total} sequences are too few for train/val/test splits of {sizes}")
        order = np.random.default_rng(self.split_seed).permutation(total)
        bounds = np.cumsum([0, *sizes])
        return {name: order[lo:hi] for name, lo, hi in zip(SPLITS, bounds[:-1], bounds[1:])}

    def split_rows(self, ids: np.ndarray, mask: np.ndarray) -> None:
        """The splits of all sequences ``(ids, mask)`` (:meth:`split_order`) and the student's subset size."""
        for name, rows in self.split_order(len(ids)).items():
            self.splits[name] = TensorDataset(torch.as_tensor(ids[rows]), torch.as_tensor(mask[rows]))
        train = len(self.splits["train"])
        self.num_train = train if self.train_subset is None else min(self.train_subset, train)

    def model_kwargs(self) -> dict:
        return {"vocab_size": self.vocab_size}

    def batch_tensors(self, split: str, rows: int) -> tuple[torch.Tensor, ...]:
        """What each batch of ``split``'s first ``rows`` rows holds: ``(ids, mask, index)``."""
        ids, mask = self.splits[split].tensors
        return ids[:rows], mask[:rows], torch.arange(rows)

    def _loader(self, split: str, shuffle: bool, rows: int | None = None) -> DataLoader:
        rows = len(self.splits[split]) if rows is None else rows
        dataset = TensorDataset(*self.batch_tensors(split, rows))
        sampler = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
        size = self.batch_size if shuffle else self.eval_batch_size
        return DataLoader(dataset, batch_size=None, sampler=BatchSampler(sampler, size, drop_last=False))

    def train_dataloader(self) -> DataLoader:
        """The student's training sequences (the first ``train_subset``), shuffled."""
        return self._loader("train", shuffle=True, rows=self.num_train)

    def pretrain_dataloader(self) -> DataLoader:
        """The whole training split, shuffled: what a cached teacher trains on."""
        return self._loader("train", shuffle=True)

    def train_inputs(self) -> torch.Tensor:
        """The student's training ids, in index order."""
        return self.splits["train"].tensors[0][:self.num_train]

    def calibration_inputs(self, blocks: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first ``blocks`` sequences of the training split, ids and target mask: what a pruned student's
        importance is measured on (never a validation or test block). ValueError past the split's size."""
        ids, mask = self.splits["train"].tensors
        if blocks > len(ids):
            raise ValueError(f"student.calibration_blocks={blocks} but the training split has {len(ids)} blocks")
        return ids[:blocks], mask[:blocks]

    def split_inputs(self, split: str) -> torch.Tensor:
        """A split's ids in index order: the student's subset for ``train``."""
        return self.train_inputs() if split == "train" else self.splits[split].tensors[0]

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)


class CorpusDataModule(TokenDataModule):
    """A user's corpus on disk (``corpus.py``: plain text split into documents at ``document_separator``
    lines, or JSON lines of ``text`` or ``prompt``/``response``), its documents packed into blocks of
    ``block_size`` tokens (``packing.py``, ``encoding.py``: EOS between documents, BOS where the tokenizer
    has one, never a chat template's turn marker; a pair is one text, its prompt and response joined by
    ``pair_separator``, kept whole in one block with only the response learnt, or rendered by the tokenizer's
    chat template with ``chat_template``), the blocks split by ``split_seed``.

    ``tokenizer``: a local Hugging Face tokenizer directory, or ``char``. ``student_tokenizer`` (``bpe:<size>`` or a
    directory) gives the student a tokenization of its own: the module is then ``corpus_cross.CrossCorpusDataModule``
    (the teacher keeps this one's view); ``cache_dir`` is where a trained one is cached.
    """

    content_keys = ("path", "tokenizer")
    teacher_free_keys = (*TokenDataModule.teacher_free_keys, "student_tokenizer", "cache_dir")

    def __new__(cls, *args, student_tokenizer: str | None = None, **kwargs):
        if student_tokenizer is not None and cls is CorpusDataModule:  # one data config, two readers of the text
            from entrenar_bench.data.corpus_cross import CrossCorpusDataModule

            cls = CrossCorpusDataModule
        return super().__new__(cls)

    def __init__(self, path: str, tokenizer: str = CHAR, block_size: int = BLOCK_SIZE,
                 document_separator: str | None = BLANK_LINE, chat_template: bool = False,
                 pair_separator: str = PAIR_SEPARATOR, student_tokenizer: str | None = None,
                 cache_dir: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.student_tokenizer = student_tokenizer
        self.cache_dir = cache_dir
        self.path = Path(path)
        self.tokenizer = tokenizer
        self.block_size = block_size
        self.document_separator = document_separator
        self.chat_template = chat_template
        self.pair_separator = pair_separator
        self.loaded_tokenizer = None  # set by load_tokens
        self.specials: Specials | None = None  # the ids that start and end a document (set by load_tokens)

    def load_tokens(self) -> tuple[np.ndarray, np.ndarray]:
        documents = read_documents(self.path, self.document_separator)
        tok = self.loaded_tokenizer = load_tokenizer(self.tokenizer, document_texts(documents, self.pair_separator))
        if self.chat_template and not tok.chat_template:
            raise ValueError(f"data.chat_template=true but tokenizer {self.tokenizer} has no chat template")
        self.vocab_size = len(tok)
        self.specials = document_specials(tok)
        encoded = encode_documents(tok, documents, self.block_size, self.chat_template, str(self.path),
                                   self.pair_separator)
        if encoded.prompts_cut:
            log.warning("%d prompt(s) of %s longer than a block of %d tokens lost their start (cut from the left)",
                        encoded.prompts_cut, self.path, self.block_size)
        if encoded.responses_cut:
            log.info("%d response(s) of %s truncated to fit their prompt's block of %d tokens",
                     encoded.responses_cut, self.path, self.block_size)
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id  # the mask decides
        return pack_blocks(encoded.units, self.block_size, pad)

    def decode(self, ids) -> str | None:
        return self.loaded_tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)
