"""The teacher: trained once per (teacher config, data config), cached, loaded frozen.

Cache key: SHA-256 of the resolved teacher and data configs (the teacher's seed and
training settings are part of the teacher config). A file lock makes parallel jobs that
need the same teacher train it once; the others wait and load it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from filelock import FileLock
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from entrenar_bench.distill.module import DistillationModule
from entrenar_bench.distill.objective import DistillationObjective
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.distill.training import fit_and_evaluate
from entrenar_bench.record import config_hash, write_json_atomic

log = logging.getLogger(__name__)

CE_ONLY = DistillSettings(name="none", logit_loss="none", alpha=0.0)


def teacher_key(teacher_cfg: DictConfig, data_cfg: DictConfig) -> str:
    """Each node resolved where it sits, so interpolations into the rest of the config (``${paths...}``) work."""
    plain = {"teacher": OmegaConf.to_container(teacher_cfg, resolve=True),
             "data": OmegaConf.to_container(data_cfg, resolve=True)}
    return config_hash(plain)[:16]


def build_model(model_cfg: DictConfig, datamodule: Any) -> nn.Module:
    return instantiate(model_cfg, input_shape=list(datamodule.input_shape), num_classes=datamodule.num_classes)


def _train_teacher(cfg: DictConfig, datamodule: Any, directory: Path) -> None:
    t = cfg.teacher
    L.seed_everything(t.seed, workers=True, verbose=False)
    model = build_model(t.model, datamodule)
    module = DistillationModule(
        model, DistillationObjective(CE_ONLY), datamodule.num_classes,
        lr=t.train.lr, weight_decay=t.train.weight_decay, augment_shift=t.train.augment_shift,
    )
    log.info("training teacher %s (cached at %s)", t.name, directory)
    result = fit_and_evaluate(module, datamodule, cfg.trainer, t.train.epochs)
    weights = directory / "teacher.pt"
    tmp = weights.with_suffix(".pt.tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(weights)
    write_json_atomic(
        directory / "teacher.json",
        {"metrics": result.metrics, "time_s": result.time_s, "device": result.device,
         "config": OmegaConf.to_container(t, resolve=True)},
    )
    log.info("teacher test accuracy %.4f (%.1f s)", result.metrics["accuracy"], result.time_s)


def load_teacher(cfg: DictConfig, datamodule: Any) -> tuple[nn.Module, Path]:
    """Return the frozen, eval-mode teacher for this config, training and caching it first if needed."""
    directory = Path(cfg.paths.cache_dir).resolve() / "teachers" / teacher_key(cfg.teacher, cfg.data)
    directory.mkdir(parents=True, exist_ok=True)
    with FileLock(str(directory / "teacher.lock")):
        if not (directory / "teacher.pt").exists():
            _train_teacher(cfg, datamodule, directory)
    model = build_model(cfg.teacher.model, datamodule)
    model.load_state_dict(torch.load(directory / "teacher.pt", map_location="cpu", weights_only=True))
    model.requires_grad_(False)
    return model.eval(), directory
