"""Checks on a composed config, run before anything trains. Each failure is one line."""

from __future__ import annotations

from numbers import Real

from hydra.errors import CompactHydraException
from omegaconf import DictConfig

from entrenar_bench.distill.ablation import FULL, parse_ablate

LOGIT_LOSSES = ("kl", "mse", "none")
FINETUNE_METHODS = ("none", "full", "lora")


class ConfigError(CompactHydraException):
    """An invalid setting; Hydra prints only this message (no traceback)."""


def _number(cfg: DictConfig, key: str) -> float:
    value = cfg
    for part in key.split("."):
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ConfigError(f"{key} must be a number, got {value!r}")
    return float(value)


def _integer(cfg: DictConfig, key: str, minimum: int) -> None:
    value = cfg
    for part in key.split("."):
        value = value[part]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{key} must be >= {minimum}, got {value}")


def check_finetune(cfg: DictConfig) -> None:
    """Raise ValueError naming the first invalid fine-tuning setting (one line)."""
    ft = cfg.finetune
    if ft.method not in FINETUNE_METHODS:
        raise ValueError(f"finetune.method must be one of {', '.join(FINETUNE_METHODS)}, got {ft.method!r}")
    if ft.method == "none":
        return
    if isinstance(ft.base.epochs, bool) or not isinstance(ft.base.epochs, int) or ft.base.epochs < 1:
        raise ValueError(f"finetune.base.epochs must be an integer >= 1, got {ft.base.epochs!r}")
    if ft.method == "lora":
        if isinstance(ft.r, bool) or not isinstance(ft.r, int) or ft.r < 1:
            raise ValueError(f"finetune.r must be an integer >= 1, got {ft.r!r}")
        if isinstance(ft.alpha, bool) or not isinstance(ft.alpha, (int, float)) or ft.alpha <= 0:
            raise ValueError(f"finetune.alpha must be a number > 0, got {ft.alpha!r}")


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first invalid setting."""
    _integer(cfg, "seed", 0)
    _integer(cfg, "train.epochs", 1)
    if cfg.get("threads") is not None:
        _integer(cfg, "threads", 1)
    if _number(cfg, "train.lr") <= 0:
        raise ConfigError(f"train.lr must be > 0, got {cfg.train.lr}")
    d = cfg.distill
    if d.logit_loss not in LOGIT_LOSSES:
        raise ConfigError(f"distill.logit_loss must be one of {', '.join(LOGIT_LOSSES)}, got {d.logit_loss!r}")
    if _number(cfg, "distill.temperature") <= 0:
        raise ConfigError(f"distill.temperature must be > 0, got {d.temperature}")
    if not 0.0 <= _number(cfg, "distill.alpha") <= 1.0:
        raise ConfigError(f"distill.alpha must be between 0 and 1, got {d.alpha}")
    for key in ("layer_weight", "attention_weight"):
        if _number(cfg, f"distill.{key}") < 0:
            raise ConfigError(f"distill.{key} must be >= 0, got {d[key]}")
    try:
        parse_ablate(cfg.get("ablate", FULL))
    except ValueError as e:
        raise ConfigError(f"ablate: {e}") from None
    if "finetune" in cfg:
        try:
            check_finetune(cfg)
        except ValueError as e:
            raise ConfigError(str(e)) from None
    if not isinstance(d.temperature_scaling, bool):
        raise ConfigError(f"distill.temperature_scaling must be true or false, got {d.temperature_scaling!r}")
