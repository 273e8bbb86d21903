"""Fine-tuning: start the student from a pre-trained base student, then train all of it or a LoRA.

The base student is the configured student model trained with cross-entropy alone on the run's
data (``finetune.base``: seed, epochs, lr, weight decay, shift augmentation). It is made once and
cached by the teacher's own machinery (``distill/teacher.py``: same trainer, file lock and cache,
keyed by the SHA-256 of the base settings, the student model and the data), so every job of a
sweep that fine-tunes the same base loads the same weights.

``finetune.method``:
  none  the student is built fresh and trained from scratch (the default);
  full  every weight of the base student trains;
  lora  peft's LoRA on the base's Linear and Conv layers: ``W x + (alpha / r) B A x``, base weights frozen.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import nn

from entrenar_bench.models import count_parameters
from entrenar_bench.validate import check_finetune

ADAPTABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def base_spec(cfg: DictConfig) -> dict[str, Any]:
    """The base student described as a teacher config, so the teacher cache trains and keys it."""
    base = cfg.finetune.base
    return {
        "name": f"base-{cfg.student.name}",
        "seed": base.seed,
        "model": OmegaConf.to_container(cfg.student.model, resolve=True),
        "train": {k: base[k] for k in ("epochs", "lr", "weight_decay", "augment_shift")},
    }


def load_base_student(cfg: DictConfig, datamodule: Any) -> tuple[nn.Module, Path] | None:
    """The cached base student (trained first if needed), or None when ``finetune.method`` is none.

    Call it before seeding the run: training the base seeds the RNG with the base's own seed.
    """
    if cfg.finetune.method == "none":
        return None
    from entrenar_bench.distill.teacher import load_teacher  # Lightning: imported only to train or load
    view = OmegaConf.create({
        "teacher": base_spec(cfg),
        "data": OmegaConf.to_container(cfg.data, resolve=True),
        "trainer": OmegaConf.to_container(cfg.trainer, resolve=True),
        "paths": {"cache_dir": cfg.paths.cache_dir},
    })
    return load_teacher(view, datamodule)


def adaptable_modules(model: nn.Module) -> list[str]:
    """Names of every Linear and Conv layer: LoRA's default targets."""
    return [name for name, module in model.named_modules() if isinstance(module, ADAPTABLE)]


def build_student(cfg: DictConfig, datamodule: Any,
                  base: tuple[nn.Module, Path] | None) -> tuple[nn.Module, dict[str, Any]]:
    """The student to train, from the run's RNG state, and what the record says about its start."""
    check_finetune(cfg)
    method = cfg.finetune.method
    if base is None:
        from entrenar_bench.distill.teacher import build_model

        return build_model(cfg.student.model, datamodule), {"method": "none"}
    model, directory = base
    model.train()
    base_info = json.loads((directory / "teacher.json").read_text())
    info: dict[str, Any] = {
        "method": method,
        "base": {"cache": str(directory), "accuracy": base_info["metrics"]["accuracy"],
                 "params": count_parameters(model)},
    }
    if method == "full":
        model.requires_grad_(True)
    else:
        from peft import LoraConfig, inject_adapter_in_model  # peft is imported only when LoRA is used

        ft = cfg.finetune
        targets = list(ft.target_modules) if ft.target_modules is not None else adaptable_modules(model)
        lora = LoraConfig(r=ft.r, lora_alpha=ft.alpha, lora_dropout=ft.dropout, target_modules=targets)
        model = inject_adapter_in_model(lora, model)
        info.update(r=ft.r, alpha=ft.alpha, target_modules=targets)
    info["trainable"] = count_parameters(model, trainable_only=True)
    return model, info
