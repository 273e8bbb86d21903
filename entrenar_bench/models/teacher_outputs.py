"""The shared teacher-output cache: a cached teacher's logits over a data module's splits, computed
once and stored beside the teacher, then read by every run of every sweep instead of running it.

``teachers/<key>/outputs/<data>-<split>-<form>.pt``: ``<data>`` hashes the full data config (the
student's subset included) and the precision they were computed in; ``<split>`` is ``train`` (the
student's training sequences), ``val`` or ``test``; ``<form>`` is ``exact`` or ``top<k>``
(``distill/teacher_targets.py``). Held-out splits are always stored exact: they measure the student's KL
to the teacher. Each file is written atomically, under the teacher's own lock.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from entrenar_bench.distill.teacher_targets import TeacherTargets
from entrenar_bench.files import config_hash, write_atomic
from entrenar_bench.models.cache import TEACHER

log = logging.getLogger(__name__)

CHUNK = 256  # sequences per teacher forward pass


def _precision_context(device: torch.device, precision: str):
    """What the trainer's precision runs the teacher under: bf16/fp16 autocast when mixed, else nothing."""
    if precision.startswith(("bf16", "16")) and "mixed" in precision:
        dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float16
        return torch.autocast(device.type, dtype=dtype)
    return nullcontext()


@torch.no_grad()
def teacher_logits(teacher: nn.Module, input_ids: torch.Tensor, device: torch.device, precision: str) -> torch.Tensor:
    """The teacher's logits over every row of ``input_ids``, in chunks, on ``device``; returned on the CPU."""
    teacher = teacher.to(device).eval()
    chunks = []
    with _precision_context(device, precision):
        for chunk in input_ids.split(CHUNK):
            chunks.append(teacher(input_ids=chunk.to(device), use_cache=False).logits.cpu())
    return torch.cat(chunks)


def output_path(teacher_dir: Path, data_cfg: DictConfig, precision: str, split: str, top_k: int) -> Path:
    key = config_hash({"data": OmegaConf.to_container(data_cfg, resolve=True), "precision": precision})[:16]
    form = f"top{top_k}" if top_k and split == "train" else "exact"
    return teacher_dir / "outputs" / f"{key}-{split}-{form}.pt"


def stored_outputs(teacher: nn.Module, teacher_dir: Path, datamodule: Any, data_cfg: DictConfig, splits: tuple[str, ...],
                   top_k: int = 0, device: torch.device | None = None, precision: str = "32-true") -> dict[str, TeacherTargets]:
    """The teacher's stored outputs for ``splits`` (computed and written first where missing)."""
    device = device or torch.device("cpu")
    paths = {split: output_path(teacher_dir, data_cfg, precision, split, top_k) for split in splits}
    missing = [split for split, path in paths.items() if not path.exists()]
    if missing:
        with TEACHER.lock(teacher_dir):
            for split in missing:
                if paths[split].exists():  # another job wrote it while this one waited
                    continue
                logits = teacher_logits(teacher, datamodule.split_inputs(split), device, precision)
                targets = TeacherTargets.top_k(logits, top_k) if top_k and split == "train" else TeacherTargets.exact(logits)
                write_atomic(paths[split], lambda f, t=targets: torch.save(t.state, f))
                log.info("stored the teacher's %s outputs (%s) at %s", split, tuple(logits.shape), paths[split])
    return {split: TeacherTargets(torch.load(path, map_location="cpu", weights_only=True)) for split, path in paths.items()}
