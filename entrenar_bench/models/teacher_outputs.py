"""The shared teacher-output cache: a cached teacher's logits over a data module's splits, computed
once and stored beside the teacher, then read by every run of every sweep instead of running it.

``teachers/<key>/outputs/<data>-<split>-<form>.pt``: ``<data>`` hashes the full data config (the
student's subset included) and the precision they were computed in; ``<split>`` is ``train`` (the
student's training sequences), ``val`` or ``test``; ``<form>`` is ``exact`` or ``top<k>``
(``distill/teacher_targets.py``), the same for every split (held-out splits give the student's KL to the
teacher; with a large vocabulary only the top-k form fits in memory). Each chunk of sequences is reduced to
its stored form as it is computed. Each file is written atomically, under the teacher's own lock.
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


def _stored(logits: torch.Tensor, top_k: int) -> TeacherTargets:
    return TeacherTargets.top_k(logits, top_k) if top_k else TeacherTargets.exact(logits)


@torch.no_grad()
def teacher_targets(teacher: nn.Module, input_ids: torch.Tensor, top_k: int, device: torch.device,
                    precision: str) -> TeacherTargets:
    """The teacher's outputs over every row of ``input_ids``, computed in chunks on ``device``, each chunk
    kept in its stored form (exact, or ``top_k``) on the CPU."""
    teacher = teacher.to(device).eval()
    parts = []
    with _precision_context(device, precision):
        for chunk in input_ids.split(CHUNK):
            parts.append(_stored(teacher(input_ids=chunk.to(device), use_cache=False).logits, top_k).to("cpu").state)
    return TeacherTargets({key: torch.cat([p[key] for p in parts]) if isinstance(value, torch.Tensor) else value
                           for key, value in parts[0].items()})


def output_path(teacher_dir: Path, data_cfg: DictConfig, precision: str, split: str, top_k: int) -> Path:
    key = config_hash({"data": OmegaConf.to_container(data_cfg, resolve=True), "precision": precision})[:16]
    return teacher_dir / "outputs" / f"{key}-{split}-{f'top{top_k}' if top_k else 'exact'}.pt"


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
                targets = teacher_targets(teacher, datamodule.split_inputs(split), top_k, device, precision)
                write_atomic(paths[split], lambda f, t=targets: torch.save(t.state, f))
                log.info("stored the teacher's %s outputs at %s", split, paths[split])
    return {split: TeacherTargets(torch.load(path, map_location="cpu", weights_only=True)) for split, path in paths.items()}
