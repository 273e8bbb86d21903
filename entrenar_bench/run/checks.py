"""Checks on a composed config, run before anything trains. Each failure is one line."""

from __future__ import annotations

import dataclasses
from numbers import Real

from omegaconf import DictConfig, OmegaConf

from entrenar_bench.distill.ablation import FULL, parse_ablate
from entrenar_bench.errors import ConfigError
from entrenar_bench.models.finetune import check_finetune

LOGIT_LOSSES = ("kl", "mse", "none")


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


def check_schema_keys(node: DictConfig, path: str = "") -> None:
    """A key that its node's schema does not declare: ConfigError naming it. Hydra refuses such a key
    in ``key=value`` itself; this catches ``+key=value``, which Hydra adds even to a structured node."""
    schema = OmegaConf.get_type(node)
    known = {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
    for key in node.keys():
        if not path and key == "hydra":  # Hydra's own node, composed with return_hydra_config
            continue
        where = f"{path}{key}"
        if known is not None and key not in known:
            raise ConfigError(f"{where}: no such setting (known: {', '.join(sorted(known))})")
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            check_schema_keys(child, f"{where}.")


def validate_config(cfg: DictConfig) -> None:
    """Raise ConfigError naming the first invalid setting."""
    check_schema_keys(cfg)
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
