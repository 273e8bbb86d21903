"""A seeded order-2 Markov source over a small vocabulary: token data whose true next-token
distribution is known, so soft targets carry information one-hot labels do not.

Each of the ``V²`` two-token states ``(a, b)`` allows ``successors`` next tokens (drawn without
replacement) with Dirichlet(``concentration``) weights; a sequence starts with two uniform tokens and
continues ``x_t ~ P(· | x_{t-2}, x_{t-1})``. The first two positions have no complete context, so
they are never targets. With the whole table known, the Bayes-optimal predictor ``argmax_v P(v | a, b)``
gives the ceiling on next-token top-1 accuracy, and ``KL(P ‖ q)`` measures any model ``q`` against
the truth.
"""

from __future__ import annotations

import numpy as np
import torch

from entrenar_bench.data.text import TokenDataModule

CONTEXT = 2  # the order of the chain: positions before it are not targets


class MarkovSource:
    """The transition table ``probs[a, b, v] = P(x_t = v | x_{t-2} = a, x_{t-1} = b)``, from ``seed``."""

    def __init__(self, vocab_size: int = 32, successors: int = 4, concentration: float = 1.0, seed: int = 0):
        if not 1 <= successors <= vocab_size:
            raise ValueError(f"successors must be between 1 and vocab_size ({vocab_size}), got {successors}")
        rng = np.random.default_rng(seed)
        self.vocab_size = vocab_size
        states = vocab_size * vocab_size
        allowed = np.argsort(rng.random((states, vocab_size)), axis=1)[:, :successors]  # distinct per state
        weights = rng.dirichlet(np.full(successors, concentration), size=states)
        probs = np.zeros((states, vocab_size))
        np.put_along_axis(probs, allowed, weights, axis=1)
        self.probs = probs.reshape(vocab_size, vocab_size, vocab_size)
        self._allowed = allowed.reshape(vocab_size, vocab_size, successors)
        self._cumulative = np.cumsum(weights, axis=1).reshape(vocab_size, vocab_size, successors)
        self._tables: dict[torch.device, torch.Tensor] = {}

    def sample(self, num_sequences: int, length: int, seed: int) -> np.ndarray:
        """``(num_sequences, length)`` int64 token ids, the same for the same seed."""
        rng = np.random.default_rng(seed)
        ids = np.empty((num_sequences, length), dtype=np.int64)
        ids[:, :CONTEXT] = rng.integers(0, self.vocab_size, (num_sequences, CONTEXT))
        last = self._cumulative.shape[2] - 1
        for t in range(CONTEXT, length):
            state = ids[:, t - 2], ids[:, t - 1]
            cumulative = self._cumulative[state]
            u = rng.random((num_sequences, 1)) * cumulative[:, -1:]
            choice = np.minimum((u >= cumulative).sum(axis=1), last)
            ids[:, t] = self._allowed[state][np.arange(num_sequences), choice]
        return ids

    def next_token_probs(self, input_ids: torch.Tensor) -> torch.Tensor:
        """``(B, L, V)``: row t is ``P(x_{t+1} | x_{t-1}, x_t)`` (what the logits at t predict); row 0,
        whose context is incomplete, is uniform (and never a target)."""
        device = input_ids.device
        if device not in self._tables:
            self._tables[device] = torch.as_tensor(self.probs, dtype=torch.float32, device=device)
        rows = self._tables[device][input_ids[:, :-1], input_ids[:, 1:]]
        first = torch.full_like(rows[:, :1], 1.0 / self.vocab_size)
        return torch.cat([first, rows], dim=1)


class MarkovDataModule(TokenDataModule):
    """Sequences from a :class:`MarkovSource`: ``num_train + num_val + num_test`` of ``seq_len`` tokens.

    The teacher trains on all ``num_train`` sequences; the student on the first ``train_subset`` of them
    (a small transfer set, where a teacher's soft targets carry the most). ``data_seed`` fixes the chain
    and the samples; ``split_seed`` which sequences land in which split.
    """

    def __init__(self, vocab_size: int = 32, successors: int = 4, concentration: float = 1.0, seq_len: int = 64,
                 num_train: int = 20000, num_val: int = 500, num_test: int = 2000, data_seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.source = MarkovSource(vocab_size, successors, concentration, seed=data_seed)
        self.seq_len = seq_len
        self.sizes = (num_train, num_val, num_test)
        self.data_seed = data_seed
        self.vocab_size = vocab_size
        self.reference = self.source.next_token_probs

    def load_tokens(self) -> tuple[np.ndarray, np.ndarray]:
        ids = self.source.sample(sum(self.sizes), self.seq_len, seed=self.data_seed + 1)
        mask = np.ones_like(ids, dtype=bool)
        mask[:, :CONTEXT] = False
        return ids, mask

    def split_sizes(self, total: int) -> tuple[int, int, int]:
        return self.sizes
