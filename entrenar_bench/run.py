"""The Hydra app: one job is one distillation run, recorded in ``result.json``.

    python -m entrenar_bench.run                                   # kd on the embedded digits
    python -m entrenar_bench.run -m distill=none,kd seed=0,1,2     # a sweep

``run(cfg, run_dir)`` does the work and is what tests call; ``main`` is the thin entry.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from entrenar_bench import __version__
from entrenar_bench.distill.ablation import FULL, apply_ablation, parse_ablate
from entrenar_bench.distill.module import DistillationModule
from entrenar_bench.distill.objective import DistillationObjective, DistillSettings
from entrenar_bench.distill.teacher import load_teacher
from entrenar_bench.distill.training import fit_and_evaluate
from entrenar_bench.finetune import build_student, load_base_student
from entrenar_bench.models import count_parameters
from entrenar_bench.placement import place_job
from entrenar_bench.record import COMPLETED, FAILED, CorruptRecord, config_hash, read_result, write_result
from entrenar_bench.validate import ConfigError, validate_config

log = logging.getLogger(__name__)

# Where and how fast a job runs, not what it computes: a sweep resumed with another launcher or
# thread count still finds its completed jobs.
PLACEMENT_KEYS = ("launcher", "threads")


class RunFailed(CompactHydraException):
    """Training raised or diverged; the failure is recorded in result.json."""


def distill_settings(cfg: DictConfig) -> DistillSettings:
    """The strategy's settings with the components named by ``ablate`` switched off."""
    fields = {f.name for f in dataclasses.fields(DistillSettings)}
    settings = DistillSettings(**{k: v for k, v in cfg.distill.items() if k in fields})
    return apply_ablation(settings, parse_ablate(cfg.get("ablate", FULL)))


def _hidden_probe(model: torch.nn.Module, input_shape: tuple[int, ...], role: str) -> list[torch.Tensor]:
    if not hasattr(model, "forward_with_hidden"):
        raise ConfigError(f"the {role} model {type(model).__name__} has no forward_with_hidden(); this strategy needs it")
    was_training = model.training
    with torch.no_grad():
        _, hidden = model.eval().forward_with_hidden(torch.zeros(2, *input_shape))
    model.train(was_training)
    return hidden


def train_student(cfg: DictConfig) -> dict[str, Any]:
    """Set up data, teacher and student from config; train; return the record's measured fields."""
    cfg = place_job(cfg)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    settings = distill_settings(cfg)
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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def run(cfg: DictConfig, run_dir: Path | str | None = None) -> dict[str, Any]:
    """One job: validate, skip if already completed here, else train and write result.json.

    A completed record of the same config is returned as is (resume); a failed or corrupt
    one is rerun. Raises RunFailed after recording a failure.
    """
    run_dir = Path(run_dir if run_dir is not None else HydraConfig.get().runtime.output_dir)
    validate_config(cfg)
    job_config = OmegaConf.to_container(cfg, resolve=True)
    digest = config_hash({k: v for k, v in job_config.items() if k not in PLACEMENT_KEYS})
    try:
        existing = read_result(run_dir)
    except CorruptRecord as e:
        log.warning("rerunning: %s", e)
        existing = None
    if existing and existing["status"] == COMPLETED:
        if existing.get("config_hash") != digest:
            raise ConfigError(f"{run_dir} holds a completed run of another configuration; use a new sweep directory")
        log.info("already completed in %s; skipped", run_dir)
        return existing
    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
    record: dict[str, Any] = {
        "status": FAILED,
        "seed": cfg.seed,
        "distill": dataclasses.asdict(distill_settings(cfg)),
        "config": job_config,
        "config_hash": digest,
        "overrides": overrides,
        "version": __version__,
        "started_at": _now(),
        "error": None,
    }
    try:
        record.update(train_student(cfg))
        record["status"] = COMPLETED
    except Exception as e:  # any failure after validation is recorded, never lost
        record["error"] = f"{type(e).__name__}: {e}"
        record["finished_at"] = _now()
        write_result(run_dir, record)
        raise RunFailed(f"run failed ({run_dir}): {record['error']}") from None
    record["finished_at"] = _now()
    write_result(run_dir, record)
    log.info(
        "%s seed=%s accuracy=%.4f loss=%.4f time=%.1fs",
        record["distill"]["name"], cfg.seed, record["metrics"]["accuracy"], record["metrics"]["loss"], record["time_s"],
    )
    return record


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
