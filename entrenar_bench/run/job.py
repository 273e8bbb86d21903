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

from entrenar_bench.distill.module import DistillationModule
from entrenar_bench.distill.objective import DistillationObjective
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.errors import ConfigError
from entrenar_bench.files import config_hash, write_json_atomic
from entrenar_bench.models.networks import count_parameters
from entrenar_bench.models.references import with_local_files
from entrenar_bench.models.pretrained import uses_student_as_base
from entrenar_bench.models.pruning.record import pruning_record
from entrenar_bench.models.saving import STUDENT_DIR, save_student, tokenizer_dir
from entrenar_bench.run.finetune import base_spec, build_student, load_base_student, run_training
from entrenar_bench.run.memory_budget import MemoryEstimate, check_memory, estimate_memory, trainable_parameters
from entrenar_bench.run.model_cache import TEACHER, build_model, cached_metrics, load_teacher
from entrenar_bench.run.placement import first_rank, place_job, wants_gpu
from entrenar_bench.tasks import Task, task_for
from entrenar_bench.tasks.teacher_store import (
    TeacherStore, check_store_size, default_top_k, describe_size, form_name, precision_context, stored_sequences,
)
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


def store_top_k(settings: DistillSettings, task: Task) -> int:
    """The stored form's k: ``distill.teacher_top_k``, or by vocabulary size where it is null."""
    return settings.teacher_top_k if settings.teacher_top_k is not None else default_top_k(task.vocab_size)


def stored_splits(settings: DistillSettings, task: Task, augmented: bool) -> tuple[bool, tuple[str, ...]]:
    """Whether the store stands in for the teacher in training, and the splits it holds."""
    cached = settings.uses_cached_outputs and not augmented and task.can_store_train()
    return cached, task.stored_splits(cached)


def check_teacher_store(cfg: DictConfig, settings: DistillSettings, task: Task, augmented: bool) -> None:
    """The store this run needs, estimated and logged before anything runs; refused (ConfigError, one line giving
    the size and the top-k alternative) above ``limits.max_teacher_store_gb``."""
    _, splits = stored_splits(settings, task, augmented)
    if not splits:
        return
    positions, top_k = sum(task.positions(split) for split in splits), store_top_k(settings, task)
    check_store_size(positions, task.vocab_size, top_k, cfg.limits.get("max_teacher_store_gb", 50))
    log.info("%s (%s)", describe_size(positions, task.vocab_size, top_k), ", ".join(splits))


def teacher_signal(cfg: DictConfig, settings: DistillSettings, task: Task, teacher: torch.nn.Module,
                   teacher_dir: Path, augmented: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The teacher's stored outputs this run reads (``tasks/teacher_store.py``: one store per teacher, data and
    precision, a directory per split and form), and what the record says of them: ``mode`` (cached: they stand
    in for the teacher in training; online: it runs every step) and ``form``."""
    cached, splits = stored_splits(settings, task, augmented)
    top_k, device, precision = store_top_k(settings, task), _job_device(cfg), str(cfg.trainer.precision)
    key = config_hash({"data": OmegaConf.to_container(cfg.data, resolve=True), "precision": precision})[:16]
    store = TeacherStore(teacher_dir / "outputs" / key)

    def logits(rows: torch.Tensor) -> torch.Tensor:
        with precision_context(device, precision):
            return task.forward(teacher.to(device), rows.to(device)).logits

    with every_core():
        signal = {split: store.build(split, logits, task.split_inputs(split), top_k, task.store_chunk)
                  for split in splits}
    return signal, {"mode": "cached" if cached else "online", "form": form_name(top_k)}


def teacher_sequences(cfg: DictConfig, settings: DistillSettings, task: Task, teacher: torch.nn.Module,
                      teacher_dir: Path) -> torch.Tensor:
    """Sequence-level KD's training sequences: the student's training prefixes continued by the teacher's samples,
    made once per (teacher, data, decoding settings) with a fixed seed, stored beside the teacher."""
    decoding = {k: getattr(settings, k) for k in ("prompt_tokens", "new_tokens", "sample_temperature", "sample_top_p")}

    def generate() -> torch.Tensor:
        device = _job_device(cfg)
        teacher.to(device)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(0)
            return torch.cat([task.continuations(teacher, rows.to(device), settings).cpu()
                              for rows in task.split_inputs("train").split(task.store_chunk)])

    key = {"data": OmegaConf.to_container(cfg.data, resolve=True), "decoding": decoding}
    return stored_sequences(teacher_dir, key, generate)


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
        save_student(student, Path(run_dir) / STUDENT_DIR, tokenizer_dir(cfg.data),
                     OmegaConf.to_container(cfg.student.model, resolve=True))
    if not task.generates:
        return
    metrics.update(task.sample_metrics(student, settings, cfg.seed))
    if run_dir is not None:
        write_json_atomic(Path(run_dir) / GENERATIONS_FILE, task.generations(student, settings.prompt_tokens))
    if teacher_info:
        teacher_info["sample_metrics"] = task.sample_metrics(teacher, settings, cfg.seed)


def prepared_objective(settings: DistillSettings, task: Task, student: torch.nn.Module,
                       teacher: torch.nn.Module | None) -> DistillationObjective:
    """The models prepared for the strategy and its objective; a strategy they cannot serve is a ConfigError."""
    task.prepare_models(settings, student, teacher)
    try:
        return DistillationObjective(settings, *task.feature_terms(settings, student, teacher))
    except ValueError as e:
        raise ConfigError(f"distill={settings.name}: {e}") from None


def run_memory(cfg: DictConfig, settings: DistillSettings, task: Task, student: torch.nn.Module,
               objective: torch.nn.Module | None, teacher: torch.nn.Module | None, augmented: bool) -> MemoryEstimate:
    """This run's estimated peak memory (``run/memory_budget.py``), checked against its limits before it trains."""
    online = not (teacher is not None and stored_splits(settings, task, augmented)[0])
    estimate = estimate_memory(task, settings, student, trainable_parameters(student, objective), teacher, online,
                               store_top_k(settings, task), int(cfg.data.batch_size))
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
    teacher = build_model(cfg.teacher.model, datamodule) if settings.needs_teacher else None
    base = None
    if cfg.finetune.method != "none":
        spec = cfg.student if uses_student_as_base(cfg) else base_spec(cfg)
        base = (build_model(spec.model, datamodule), None)
    student, _ = build_student(cfg, task, base)
    objective = prepared_objective(settings, task, student, teacher)
    augmented = task.augmentation(run_training(cfg).augment_shift) is not None
    return run_memory(cfg, settings, task, student, objective, teacher, augmented)


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
    teacher, teacher_dir, teacher_info = None, None, None
    if settings.needs_teacher:
        check_teacher_store(cfg, settings, task, augment is not None)
        teacher, teacher_dir = load_teacher(cfg, task)
        teacher_info = measured_teacher(teacher, teacher_dir)
    base = load_base_student(cfg, task)  # before seeding: training a base seeds the RNG itself
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    student, finetune_info = build_student(cfg, task, base)
    objective = prepared_objective(settings, task, student, teacher)
    estimate = run_memory(cfg, settings, task, student, objective, teacher, augment is not None)
    signal, stored = teacher_signal(cfg, settings, task, teacher, teacher_dir, augment is not None) if teacher else ({}, None)
    cached = "train" in signal
    module = DistillationModule(task, student, objective, None if cached else teacher,
                                signal, lr=train.lr, weight_decay=train.weight_decay, optim=cfg.get("optim"),
                                augment=augment)
    loader = task.train_loader(indexed=cached)
    if settings.seq_kd:
        loader = task.sequence_loader(teacher_sequences(cfg, settings, task, teacher, teacher_dir), settings.prompt_tokens)
    fit = fit_and_evaluate(module, datamodule, cfg.trainer, train.epochs, loader,
                           checkpoint=checkpoint, checkpoint_every=cfg.train.checkpoint_every, log_dir=run_dir,
                           loggers=loggers)
    after_training(cfg, settings, task, student, teacher, fit.metrics, teacher_info, run_dir)
    return {
        "metrics": fit.metrics,
        "metrics_before": fit.metrics_before,
        "primary_metric": task.primary_metric.as_record(),
        "time_s": fit.time_s,
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
        "teacher_outputs": stored,
        "finetune": finetune_info,
        **fit.extra,
        **task.record(module.train_targets, fit.time_s),
        **time_split(module, fit.time_s),
    }
