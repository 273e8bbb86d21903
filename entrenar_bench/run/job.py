"""The training half of a run: data, teacher and student from config, fitted and measured.

Kept apart from ``run.py`` so that importing the Hydra app stays light: a parallel sweep's
Hydra parent process only dispatches jobs and never loads Lightning (about 5 s of imports);
each job loads it here.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from entrenar_bench.distill.module import DistillationModule
from entrenar_bench.distill.objective import DistillationObjective
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.models.cache import load_teacher
from entrenar_bench.distill.training import fit_and_evaluate
from entrenar_bench.models.finetune import build_student, load_base_student
from entrenar_bench.models.networks import count_parameters
from entrenar_bench.run.placement import place_job
from entrenar_bench.errors import ConfigError


def _hidden_probe(model: torch.nn.Module, input_shape: tuple[int, ...], role: str) -> list[torch.Tensor]:
    if not hasattr(model, "forward_with_hidden"):
        raise ConfigError(f"the {role} model {type(model).__name__} has no forward_with_hidden(); this strategy needs it")
    was_training = model.training
    with torch.no_grad():
        _, hidden = model.eval().forward_with_hidden(torch.zeros(2, *input_shape))
    model.train(was_training)
    return hidden


def train_student(cfg: DictConfig, settings: DistillSettings) -> dict[str, Any]:
    """Set up data, teacher and student from config; train; return the record's measured fields."""
    cfg = place_job(cfg)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    teacher, teacher_info = None, None
    if settings.needs_teacher:
        teacher, teacher_dir = load_teacher(cfg, datamodule)
        teacher_info = {"cache": str(teacher_dir), "params": count_parameters(teacher)}
    base = load_base_student(cfg, datamodule)  # before seeding: training a base seeds the RNG itself
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    student, finetune_info = build_student(cfg, datamodule, base)
    student_hidden, teacher_hidden = [], []
    if settings.needs_hidden:
        student_hidden = _hidden_probe(student, datamodule.input_shape, "student")
        teacher_hidden = _hidden_probe(teacher, datamodule.input_shape, "teacher")
    try:
        objective = DistillationObjective(settings, student_hidden, teacher_hidden)
    except ValueError as e:
        raise ConfigError(f"distill={settings.name}: {e}") from None
    precompute = teacher is not None and not cfg.train.augment_shift and hasattr(datamodule, "indexed_train_dataloader")
    module = DistillationModule(
        student, objective, datamodule.num_classes, teacher,
        lr=cfg.train.lr, weight_decay=cfg.train.weight_decay, augment_shift=cfg.train.augment_shift,
        teacher_inputs=datamodule.train_inputs() if precompute else None,
    )
    train_loader = datamodule.indexed_train_dataloader() if precompute else None
    fit = fit_and_evaluate(module, datamodule, cfg.trainer, cfg.train.epochs, train_loader)
    student_params = count_parameters(student)
    projection_params = count_parameters(objective)
    return {
        "metrics": fit.metrics,
        "time_s": fit.time_s,
        "samples_per_s": fit.samples_per_s,
        "peak_memory_gb": fit.peak_memory_gb,
        "peak_memory_kind": fit.peak_memory_kind,
        "device": fit.device,
        "params": {
            "student": student_params,
            "projections": projection_params,
            "trainable": count_parameters(module, trainable_only=True),
            "teacher": teacher_info["params"] if teacher_info else None,
        },
        "teacher": teacher_info,
        "finetune": finetune_info,
    }
