"""The training half of a run: data, teacher and student from config, fitted and measured.

Kept apart from ``run.py`` so that importing the Hydra app stays light: a parallel sweep's
Hydra parent process only dispatches jobs and never loads Lightning (about 5 s of imports);
each job loads it here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from entrenar_bench.distill.lm_module import TokenDistillationModule
from entrenar_bench.distill.lm_objective import TokenDistillationObjective
from entrenar_bench.distill.module import DistillationModule
from entrenar_bench.distill.objective import DistillationObjective
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.models.cache import TEACHER, cached_metrics, load_teacher
from entrenar_bench.distill.training import fit_and_evaluate
from entrenar_bench.models.causal_lm import use_eager_attention
from entrenar_bench.models.finetune import build_student, load_base_student, run_training
from entrenar_bench.models.networks import count_parameters
from entrenar_bench.models.references import with_local_files
from entrenar_bench.models.teacher_outputs import stored_outputs
from entrenar_bench.run.placement import place_job, wants_gpu
from entrenar_bench.errors import ConfigError


def _hidden_probe(model: torch.nn.Module, input_shape: tuple[int, ...], role: str) -> list[torch.Tensor]:
    if not hasattr(model, "forward_with_hidden"):
        raise ConfigError(f"the {role} model {type(model).__name__} has no forward_with_hidden(); this strategy needs it")
    was_training = model.training
    with torch.no_grad():
        _, hidden = model.eval().forward_with_hidden(torch.zeros(2, *input_shape))
    model.train(was_training)
    return hidden


def _classification_module(cfg: DictConfig, settings: DistillSettings, datamodule: Any, student: torch.nn.Module,
                           teacher: torch.nn.Module | None, teacher_dir: Path | None):
    """Image/signal classification: the teacher's outputs precomputed once per run where the data allows."""
    student_hidden, teacher_hidden = [], []
    if settings.needs_hidden:
        student_hidden = _hidden_probe(student, datamodule.input_shape, "student")
        teacher_hidden = _hidden_probe(teacher, datamodule.input_shape, "teacher")
    objective = DistillationObjective(settings, student_hidden, teacher_hidden)
    precompute = (teacher is not None and not cfg.train.augment_shift and settings.teacher_outputs == "cached"
                  and hasattr(datamodule, "indexed_train_dataloader"))
    train = run_training(cfg)
    module = DistillationModule(
        student, objective, datamodule.num_classes, teacher,
        lr=train.lr, weight_decay=train.weight_decay, augment_shift=train.augment_shift,
        teacher_inputs=datamodule.train_inputs() if precompute else None,
    )
    return module, datamodule.indexed_train_dataloader() if precompute else None, {}


def _language_model_module(cfg: DictConfig, settings: DistillSettings, datamodule: Any, student: torch.nn.Module,
                           teacher: torch.nn.Module | None, teacher_dir: Path | None):
    """Causal LMs: the teacher's stored outputs (models/teacher_outputs.py) stand in for it where the
    strategy needs logits only; held-out splits always read them for the student-teacher KL. The record's
    ``teacher_outputs``: ``mode`` (cached or online in training) and ``form`` (exact or top<k>)."""
    if settings.attention_weight > 0:
        use_eager_attention(student, teacher)
    objective = TokenDistillationObjective(settings, student.config, teacher.config if teacher is not None else None)
    targets, info = {}, {}
    if teacher is not None:
        cached = settings.uses_cached_outputs
        splits = ("train", "val", "test") if cached else ("val", "test")
        device = torch.device("cuda", torch.cuda.current_device()) if (
            wants_gpu(cfg.trainer.accelerator) and torch.cuda.is_available()) else torch.device("cpu")
        targets = stored_outputs(teacher, teacher_dir, datamodule, cfg.data, splits, settings.teacher_top_k,
                                 device, str(cfg.trainer.precision))
        form = f"top{settings.teacher_top_k}" if settings.teacher_top_k else "exact"
        info = {"teacher_outputs": {"mode": "cached" if cached else "online", "form": form}}
    train = run_training(cfg)
    module = TokenDistillationModule(
        student, objective, None if settings.uses_cached_outputs else teacher,
        lr=train.lr, weight_decay=train.weight_decay, teacher_targets=targets, reference=datamodule.reference,
    )
    return module, None, info


MODULES = {"classification": _classification_module, "causal_lm": _language_model_module}


def train_student(cfg: DictConfig, settings: DistillSettings, checkpoint: Path | None = None,
                  run_dir: Path | None = None) -> dict[str, Any]:
    """Set up data, teacher and student from config; train (resuming from ``checkpoint`` if it exists);
    return the record's measured fields. ``run_dir``: where the per-epoch ``metrics.csv`` goes."""
    cfg = with_local_files(place_job(cfg))  # GGUF, wheel and corpus references -> files in the cache
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    if datamodule.task not in MODULES:
        raise ConfigError(f"data: task {datamodule.task!r} is not one of {', '.join(MODULES)}")
    teacher, teacher_dir, teacher_info = None, None, None
    if settings.needs_teacher:
        teacher, teacher_dir = load_teacher(cfg, datamodule)
        trained = cached_metrics(TEACHER, teacher_dir)
        teacher_info = {"cache": str(teacher_dir), "params": count_parameters(teacher),
                        "accuracy": trained["metrics"]["accuracy"], "metrics": trained["metrics"]}
    base = load_base_student(cfg, datamodule)  # before seeding: training a base seeds the RNG itself
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    student, finetune_info = build_student(cfg, datamodule, base)
    try:
        module, train_loader, extra = MODULES[datamodule.task](cfg, settings, datamodule, student, teacher, teacher_dir)
    except ValueError as e:
        raise ConfigError(f"distill={settings.name}: {e}") from None
    fit = fit_and_evaluate(module, datamodule, cfg.trainer, run_training(cfg).epochs, train_loader,
                           checkpoint=checkpoint, checkpoint_every=cfg.train.checkpoint_every, log_dir=run_dir)
    student_params = count_parameters(student)
    projection_params = count_parameters(module.objective)
    if hasattr(module, "train_tokens"):
        extra["tokens_per_s"] = module.train_tokens / fit.time_s if fit.time_s else None
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
        **fit.extra,
        **extra,
    }
