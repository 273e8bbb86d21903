"""Fine-tuning: start the student from a pre-trained base student, then train all of it or a LoRA.

The base student is the configured student model (or ``finetune.base.model``, named
``finetune.base.name``, when set: a language model's base student is wider than its distilled one)
trained with cross-entropy alone on the run's data (``finetune.base``: seed and the training schema).
A pretrained student with no separate base named is its own base, used as it is: neither trained first
nor cached (models/pretrained.py ``uses_student_as_base``).
A fine-tuning run trains for ``finetune.epochs`` at ``finetune.lr`` (null: ``train``'s).
It is made once and kept in the model cache (``run/model_cache.py``, ``base_students/<key>/student.pt``,
keyed by the SHA-256 of the base settings,
the student model and the data), so every job of a sweep that fine-tunes the same base loads it.

``finetune.method``:
  none  the student is built fresh and trained from scratch (the default);
  full  every weight of the base student trains;
  lora  peft's LoRA on ``finetune.target_modules`` (null: the task's default targets — every Linear and Conv
        layer of a classifier, a causal LM's attention and MLP projections): ``W x + (alpha / r) B A x``, base
        weights frozen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from entrenar_bench.models.pretrained import uses_student_as_base

if TYPE_CHECKING:  # torch is imported only where a model is built: the checks run in the light CLI too
    from torch import nn

FINETUNE_METHODS = ("none", "full", "lora")  # its settings are checked with the others (run/checks.py)


def base_spec(cfg: DictConfig) -> DictConfig:
    """The base student: ``finetune.base.model`` or the configured student model, with ``finetune.base``'s
    seed and training."""
    base = OmegaConf.to_container(cfg.finetune.base, resolve=True)
    name, model = base.pop("name"), base.pop("model")
    return OmegaConf.create({
        "name": name or cfg.student.name,
        "seed": base.pop("seed"),
        "model": model or OmegaConf.to_container(cfg.student.model, resolve=True),
        "train": base,
    })


def run_training(cfg: DictConfig) -> DictConfig:
    """This run's optimisation: ``train``, with ``finetune.epochs`` and ``finetune.lr`` in their place when
    fine-tuning and set (a pre-trained model is fine-tuned shorter, and often slower, than one from scratch)."""
    ft = cfg.finetune
    if ft.method == "none":
        return cfg.train
    return OmegaConf.merge(cfg.train, {key: ft[key] for key in ("epochs", "lr") if ft[key] is not None})


def load_base_student(cfg: DictConfig, task: Any) -> tuple[nn.Module, Path | None] | None:
    """The cached base student (trained first if needed), or None when ``finetune.method`` is none; a
    pretrained student as it is (directory None) when it is its own base.

    Call it before seeding the run: training the base seeds the RNG with the base's own seed.
    """
    if cfg.finetune.method == "none":
        return None
    # Lightning: only to train or load
    from entrenar_bench.run.model_cache import BASE_STUDENT, build_model, cached_model

    if uses_student_as_base(cfg):
        return build_model(cfg.student.model, task.datamodule), None

    return cached_model(BASE_STUDENT, base_spec(cfg), cfg, task)


def build_student(cfg: DictConfig, task: Any,
                  base: tuple[nn.Module, Path] | None) -> tuple[nn.Module, dict[str, Any]]:
    """The student to train, from the run's RNG state, and what the record says about its start."""
    method = cfg.finetune.method
    from entrenar_bench.run.model_cache import BASE_STUDENT, build_model, cached_metrics
    from entrenar_bench.models.networks import count_parameters

    if base is None:
        return build_model(cfg.student.model, task.datamodule), {"method": "none"}
    model, directory = base
    model.train()
    base_info = cached_metrics(BASE_STUDENT, directory) if directory is not None else None  # None: the student
    train = run_training(cfg)
    info: dict[str, Any] = {
        "method": method, "epochs": train.epochs, "lr": train.lr,
        "base": {"name": base_info["config"]["name"] if base_info else cfg.student.name,
                 "cache": str(directory) if base_info else None,
                 "accuracy": base_info["metrics"]["accuracy"] if base_info else None,
                 "params": count_parameters(model)},
    }
    if method == "full":
        model.requires_grad_(True)
    else:
        from peft import LoraConfig, inject_adapter_in_model  # peft is imported only when LoRA is used

        ft = cfg.finetune
        targets = list(ft.target_modules) if ft.target_modules is not None else task.lora_targets(model)
        lora = LoraConfig(r=ft.r, lora_alpha=ft.alpha, lora_dropout=ft.dropout, target_modules=targets)
        model = inject_adapter_in_model(lora, model)
        info.update(r=ft.r, alpha=ft.alpha, target_modules=targets)
    info["trainable"] = count_parameters(model, trainable_only=True)
    return model, info
