"""Sequence-level KD's training sequences (Kim & Rush 2016): the student's training rows with their prefixes
continued by the teacher's decoding (``distill.seq_kd_decoding``: greedy, beam or sample), made once per (teacher,
data and its contents, prefixes, decoding) with a fixed seed, stored beside the teacher's outputs as a ``.npy`` of
token ids and read by every later run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from entrenar_bench import locks
from entrenar_bench.files import config_hash, write_atomic

log = logging.getLogger(__name__)


def stored_sequences(teacher_dir: Path, key: Mapping[str, Any], generate: Callable[[], torch.Tensor]) -> torch.Tensor:
    """The teacher's sampled sequences for ``key`` (data config and decoding settings): generated once under a
    lock and stored beside its outputs as a ``.npy`` of token ids, then read (sequence-level KD trains every
    run on the same ones)."""
    path = teacher_dir / "outputs" / f"{config_hash(dict(key))[:16]}-train-sequences.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    with locks.hold(path.with_suffix(".lock"), wait=True):
        if not path.exists():
            sequences = generate()
            write_atomic(path, lambda f: np.save(f, sequences.numpy(), allow_pickle=False))
            log.info("stored the teacher's sequences at %s", path)
            return sequences
    log.info("read the teacher's sequences from %s", path)
    return torch.from_numpy(np.load(path, allow_pickle=False))


def teacher_sequences(task: Any, teacher: torch.nn.Module, teacher_dir: Path, settings: Any,
                      data_key: Mapping[str, Any], device: torch.device) -> torch.Tensor:
    """The teacher's decoding of the training split's prefixes (``task.decoded_split``, seed 0, the caller's
    generators untouched), keyed by ``data_key`` (the data config and its contents' digests) and
    ``settings.seq_kd_key`` (prefix rule, length, the decoding's own settings)."""

    def generate() -> torch.Tensor:
        teacher.to(device)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(0)
            return task.decoded_split(teacher, "train", settings, settings.seq_kd_decoder, device)

    key = {**data_key, **settings.seq_kd_key}
    return stored_sequences(teacher_dir, key, generate)
