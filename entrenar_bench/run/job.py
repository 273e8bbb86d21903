"""The training half of a run: data, task, teacher and student from config, fitted and measured.

Kept apart from ``run/app.py`` so that importing the Hydra app stays light: a parallel sweep's Hydra parent
process only dispatches jobs and never loads Lightning (about 5 s of imports); each job loads it here.
Everything task-specific is asked of the data's task (``entrenar_bench/tasks``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from entrenar_bench.distill import feature_terms
from entrenar_bench.distill.module import DistillationModule
from entrenar_bench.distill.objective import DistillationObjective
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.errors import ConfigError
from entrenar_bench.files import write_json_atomic
from entrenar_bench.models.networks import count_parameters
from entrenar_bench.models.references import with_local_files
from entrenar_bench.models.pretrained import uses_student_as_base
from entrenar_bench.models.pruning.record import pruning_record
from entrenar_bench.models.saving import STUDENT_DIR, save_student, tokenizer_dir
from entrenar_bench.run.accounting import budget_record, plan_budget
from entrenar_bench.run.finetune import base_spec, build_student, load_base_student, run_training
from entrenar_bench.run.memory_budget import MemoryEstimate, check_memory, estimate_memory, trainable_parameters
from entrenar_bench.run.metrics_before import CachedBefore
from entrenar_bench.run.model_cache import (
    TEACHER, build_model, cached_metrics, cached_teacher_metrics, load_teacher,
)
from entrenar_bench.run.padded_vocab import padded_vocabulary
from entrenar_bench.run.placement import first_rank, place_job, wants_gpu
from entrenar_bench.tasks import Task, task_for
from entrenar_bench.teacher_signal.plan import TeacherPlan
from entrenar_bench.training.loop import fit_and_evaluate


log = logging.getLogger(__name__)
GENERATIONS_FILE = "generations.json"  # greedy continuations of a few test prompts, beside result.json


def _job_device(cfg: DictConfig) -> torch.device:
    if wants_gpu(cfg.trainer.accelerator) and torch.cuda.is_available():
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


@contextmanager
def every_core() -> Iterator[None]:
    """Torch's threads raised to the machine's cores for a one-off pass (the teacher over its store), then restored:
    the jobs that wait for that store have nothing else to do."""
    threads = torch.get_num_threads()
    torch.set_num_threads(max(threads, os.cpu_count() or 1))
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def time_split(module: DistillationModule, time_s: float) -> dict[str, Any]:
    """A run's training time split into generation (sampling continuations), the teacher's forward passes and the
    rest, where generation is part of the run (else only ``training_s``)."""
    if not module.timed:
        return {"time_split": {"training_s": time_s}}
    rest = time_s - module.generation_s - module.teacher_s
    return {"time_split": {"training_s": rest, "generation_s": module.generation_s, "teacher_s": module.teacher_s},
            "generated_tokens": module.generated_tokens,
            "generated_tokens_per_s": module.generated_tokens / module.generation_s if module.generation_s else None}


def measured_teacher(teacher: torch.nn.Module, teacher_dir: Path) -> dict[str, Any]:
    """What the record says of the teacher: where it is cached, its size, and what it measured when cached."""
    trained = cached_metrics(TEACHER, teacher_dir)
    return {"cache": str(teacher_dir), "params": count_parameters(teacher), "accuracy": trained["metrics"]["accuracy"],
            "metrics": trained["metrics"]}


def after_training(cfg: DictConfig, settings: DistillSettings, task: Task, student: torch.nn.Module,
                   teacher: torch.nn.Module | None, metrics: dict[str, float], teacher_info: dict | None,
                   run_dir: Path | None) -> None:
    """What a trained student leaves behind: itself (``student/``, for ``entrenar-bench export``) and, where its
    task generates, the measures of its own samples (into ``metrics``, the teacher's into ``teacher_info``) and
    a few greedy continuations (``generations.json``)."""
    if run_dir is not None and cfg.get("save_student", False) and first_rank():
        own = getattr(task.datamodule, "student_tokenizer_dir", None)  # a tokenizer of the student's own
        save_student(student, Path(run_dir) / STUDENT_DIR, own or tokenizer_dir(cfg.data),
                     OmegaConf.to_container(cfg.student.model, resolve=True))
    if not task.generates:
        return
    metrics.update(task.sample_metrics(student, settings, cfg.seed))
    if run_dir is not None:
        write_json_atomic(Path(run_dir) / GENERATIONS_FILE, task.generations(student, settings.prompt_tokens))
    if teacher_info:
        teacher_info["sample_metrics"] = task.teacher_task().sample_metrics(teacher, settings, cfg.seed)


def prepared_objective(settings: DistillSettings, task: Task, student: torch.nn.Module,
                       teacher: torch.nn.Module | None) -> DistillationObjective:
    """The models prepared for the strategy and its objective; a strategy they cannot serve is a ConfigError."""
    task.prepare_models(settings, student, teacher)
    try:
        return DistillationObjective(settings, feature_terms.build(settings, task, student, teacher))
    except ValueError as e:
        raise ConfigError(f"distill={settings.name}: {e}") from None


def run_memory(cfg: DictConfig, settings: DistillSettings, task: Task, student: torch.nn.Module,
               objective: torch.nn.Module | None, teacher: torch.nn.Module | None,
               plan: TeacherPlan | None) -> MemoryEstimate:
    """This run's estimated peak memory (``run/memory_budget.py``), checked against its limits before it trains."""
    estimate = estimate_memory(task, settings, student, trainable_parameters(student, objective), teacher, plan,
                               int(cfg.data.batch_size))
    check_memory(estimate, cfg, _job_device(cfg))
    return estimate


def planned_memory(cfg: DictConfig, settings: DistillSettings) -> MemoryEstimate:
    """A run's memory estimate from its config, for the sweep's checks before launch (``--max-memory``): data
    and models built as the job builds them, but untrained (a teacher or base student that a job would train
    first has the same size untrained); ConfigError where it does not fit."""
    cfg = with_local_files(cfg)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    task = task_for(datamodule)
    teacher = build_model(cfg.teacher.model, task.teacher_task().datamodule) if settings.needs_teacher else None
    base = None
    if cfg.finetune.method != "none":
        spec = cfg.student if uses_student_as_base(cfg) else base_spec(cfg)
        base = (build_model(spec.model, datamodule), None)
    student, _ = build_student(cfg, task, base)
    objective = prepared_objective(settings, task, student, teacher)
    augmented = task.augmentation(run_training(cfg).augment_shift) is not None
    plan = TeacherPlan.make(cfg, settings, task, augmented) if teacher is not None else None
    return run_memory(cfg, settings, task, student, objective, teacher, plan)


def train_student(cfg: DictConfig, settings: DistillSettings, checkpoint: Path | None = None,
                  run_dir: Path | None = None, loggers: list | None = None) -> dict[str, Any]:
    """Set up data, teacher and student from config; train (resuming from ``checkpoint`` if it exists);
    return the record's measured fields. ``run_dir``: where the per-epoch ``metrics.csv`` is; ``loggers``:
    where the per-epoch metrics go (run/tracking.py)."""
    cfg = with_local_files(place_job(cfg))  # GGUF, wheel and corpus references -> files in the cache
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    task = task_for(datamodule)
    train = run_training(cfg)
    augment = task.augmentation(train.augment_shift)
    teacher, teacher_dir, teacher_info, plan = None, None, None, None
    if settings.needs_teacher:
        plan = TeacherPlan.make(cfg, settings, task, augment is not None)
        plan.check()
        teacher, teacher_dir = load_teacher(cfg, task.teacher_task())
        teacher_info = measured_teacher(teacher, teacher_dir)
    base = load_base_student(cfg, task)  # before seeding: training a base seeds the RNG itself
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    student, finetune_info = build_student(cfg, task, base)
    objective = prepared_objective(settings, task, student, teacher)
    vocabulary = padded_vocabulary(settings, task, student, teacher, int(cfg.data.batch_size))
    objective.shared_ids = vocabulary["shared_ids"] if vocabulary else None
    estimate = run_memory(cfg, settings, task, student, objective, teacher, plan)
    with every_core():
        signal = plan.build(task, teacher, teacher_dir, _job_device(cfg)) if plan else {}
    cached = "train" in signal
    unmatched = task.unmatched_mass(teacher, int(cfg.data.batch_size), signal.get("train")) \
        if teacher is not None else None
    module = DistillationModule(task, student, objective, None if cached else teacher,
                                signal, lr=train.lr, weight_decay=train.weight_decay, optim=cfg.get("optim"),
                                augment=augment)
    stored = plan.record() if plan else None
    if stored is not None and module.holds_teacher_features:
        stored["mode"] = "cached"  # the teacher's features over the training rows, computed once, stand in for it
    loader = task.train_loader(indexed=module.reads_train_rows)
    if settings.seq_kd:
        loader = task.sequence_loader(plan.sequences(task, teacher, teacher_dir, settings, _job_device(cfg)), settings)
    budget = plan_budget(train, task, loader, int(cfg.data.batch_size), teacher)
    before = CachedBefore(cfg.paths.cache_dir, module, teacher_dir, str(cfg.trainer.precision))
    fit = fit_and_evaluate(module, datamodule, cfg.trainer, budget.length.epochs, loader,
                           checkpoint=checkpoint, checkpoint_every=cfg.train.checkpoint_every, log_dir=run_dir,
                           loggers=loggers, max_steps=budget.length.steps, callbacks=budget.callbacks,
                           evaluate_before=before)
    after_training(cfg, settings, task, student, teacher, fit.metrics, teacher_info, run_dir)
    teacher_mode = stored["mode"] if stored else "online"
    spent = budget_record(budget, module, fit.extra["devices"], student, teacher, teacher_mode,
                          settings.seq_kd, fit.metrics_before, fit.metrics,
                          teacher_info["metrics"] if teacher_info else cached_teacher_metrics(cfg, task),
                          task.primary_metric.name)
    return {
        "metrics": fit.metrics,
        "metrics_before": fit.metrics_before,
        "metrics_before_cache": before.as_record(),  # its file, and whether an earlier run had made it
        "primary_metric": task.primary_metric.as_record(),
        "metric_directions": task.directions(),
        "time_s": fit.time_s,
        "validation_s": fit.validation_s,  # of time_s: the learning curve's validation passes
        "samples_per_s": fit.samples_per_s,
        "peak_memory_gb": fit.peak_memory_gb,
        "peak_memory_kind": fit.peak_memory_kind,
        "memory_estimate": estimate.as_record(),
        "device": fit.device,
        "params": {
            "student": count_parameters(student),
            "projections": count_parameters(module.objective),
            "trainable": count_parameters(module, trainable_only=True),
            "teacher": teacher_info["params"] if teacher_info else None,
        },
        "teacher": teacher_info,
        "pruning": pruning_record(student),
        "teacher_signal": stored,
        "finetune": finetune_info,
        **({"padded_vocabulary": vocabulary} if vocabulary else {}),
        **({"unmatched_mass": unmatched} if unmatched is not None else {}),
        **fit.extra,
        **task.record(module.train_targets, fit.training_s),
        **time_split(module, fit.training_s),
        **spent,
    }
