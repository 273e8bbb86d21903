"""Checks on a composed config, run before anything trains. Each failure is one line."""

from __future__ import annotations

import dataclasses
import math
from numbers import Real
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from entrenar_bench.distill.ablation import FULL, parse_ablate
from entrenar_bench.distill.settings import LOGIT_LOSSES, TEACHER_OUTPUTS
from entrenar_bench.errors import ConfigError
from entrenar_bench.models.finetune import check_finetune
from entrenar_bench.models.references import with_local_files
from entrenar_bench.models.vocabulary import check_pretrained_models
from entrenar_bench.run.placement import check_devices, device_count, wants_gpu


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
    check_settings(cfg)
    _integer(cfg, "seed", 0)
    _integer(cfg, "train.epochs", 1)
    if cfg.train.get("checkpoint_every") is not None:
        _integer(cfg, "train.checkpoint_every", 1)
    check_devices(cfg)
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
    for key in ("beta", "skew_lambda"):
        if not 0.0 <= _number(cfg, f"distill.{key}") <= 1.0:
            raise ConfigError(f"distill.{key} must be between 0 and 1, got {d[key]}")
    if d.teacher_outputs not in TEACHER_OUTPUTS:
        raise ConfigError(f"distill.teacher_outputs must be one of {', '.join(TEACHER_OUTPUTS)}, "
                          f"got {d.teacher_outputs!r}")
    _integer(cfg, "distill.teacher_top_k", 0)
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
    check_pretrained_models(with_local_files(cfg))  # fetches and converts references once, then reads files only


def _walk(value: Any, path: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{path} must be a finite number, got {value}")
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        _walk(child, f"{path}.{key}" if path else str(key))


def check_finite(cfg: DictConfig) -> None:
    """Every number of the config (Hydra's own node aside), interpolations resolved, is finite: a NaN or an
    infinity anywhere is refused by name before anything runs."""
    for key in cfg.keys():
        if key == "hydra":
            continue
        try:
            node = cfg._get_node(key)
            value = (OmegaConf.to_container(node, resolve=True, throw_on_missing=False)
                     if isinstance(node, (DictConfig, ListConfig)) else cfg.get(key))
        except OmegaConfBaseException as e:
            raise ConfigError(f"{key}: {' '.join(str(e).split())[:200]}") from None
        _walk(value, str(key))


def _check(node: Any, path: str, rule: str) -> None:
    """``rule``: ``int>=N``, ``number>0``, ``number>=0`` or ``fraction`` (strictly between 0 and 1)."""
    if rule.startswith("int"):
        if isinstance(node, bool) or not isinstance(node, int):
            raise ConfigError(f"{path} must be an integer, got {node!r}")
        if node < int(rule[5:]):
            raise ConfigError(f"{path} must be >= {rule[5:]}, got {node}")
        return
    if isinstance(node, bool) or not isinstance(node, Real):
        raise ConfigError(f"{path} must be a number, got {node!r}")
    if (rule == "number>0" and not node > 0) or (rule == "number>=0" and not node >= 0) or \
            (rule == "fraction" and not 0 < node < 1):
        what = {"number>0": "> 0", "number>=0": ">= 0", "fraction": "between 0 and 1 (exclusive)"}[rule]
        raise ConfigError(f"{path} must be {what}, got {node!r}")


DATA_RULES = {"batch_size": "int>=1", "num_workers": "int>=0", "split_seed": "int>=0", "data_seed": "int>=0",
              "num_samples": "int>=1", "num_train": "int>=1", "num_val": "int>=1", "num_test": "int>=1",
              "seq_len": "int>=2", "block_size": "int>=2", "vocab_size": "int>=2", "successors": "int>=1",
              "train_subset": "int>=1", "concentration": "number>0"}
TRAIN_RULES = {"epochs": "int>=1", "lr": "number>0", "weight_decay": "number>=0", "augment_shift": "int>=0",
               "seed": "int>=0"}
PRETRAINED_RULES = {**TRAIN_RULES, "epochs": "int>=0"}  # a teacher or base student: 0 keeps a pretrained one
TRAINER_RULES = {"gradient_clip_val": "number>=0", "accumulate_grad_batches": "int>=1",
                 "log_every_n_steps": "int>=1", "num_sanity_val_steps": "int>=-1"}
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")
PRECISIONS = ("64", "64-true", "32", "32-true", "16", "16-mixed", "16-true", "bf16", "bf16-mixed", "bf16-true",
              "transformer-engine", "transformer-engine-float16")


def _apply(node: Any, prefix: str, rules: dict[str, str]) -> None:
    """Check each key of ``node`` that ``rules`` names (a null value is left to the code's default)."""
    if not isinstance(node, DictConfig):
        return
    for key, rule in rules.items():
        if key in node and node[key] is not None:
            _check(node[key], f"{prefix}{key}", rule)
    if rules is DATA_RULES:
        fractions = [k for k in node.keys() if str(k).endswith("_fraction") and node[k] is not None]
        for key in fractions:
            _check(node[key], f"{prefix}{key}", "fraction")
        if fractions and sum(node[k] for k in fractions) >= 1:
            raise ConfigError(f"{' + '.join(prefix + str(k) for k in fractions)} must be below 1 "
                              "(something must be left to train on)")


def check_trainer(cfg: DictConfig) -> None:
    """Accelerator and precision by name; a GPU trainer needs a CUDA GPU where its jobs run (this machine,
    unless a SLURM or remote Ray launcher sends them elsewhere), with as many devices as it asks for."""
    trainer = cfg.get("trainer")
    if not isinstance(trainer, DictConfig):
        return
    _apply(trainer, "trainer.", TRAINER_RULES)
    accelerator = trainer.get("accelerator", "cpu")
    if isinstance(accelerator, str) and accelerator not in ACCELERATORS:
        raise ConfigError(f"trainer.accelerator must be one of {', '.join(ACCELERATORS)}, got {accelerator!r}")
    if "precision" in trainer and str(trainer.precision) not in PRECISIONS:
        raise ConfigError(f"trainer.precision must be one of {', '.join(PRECISIONS)}, got {trainer.precision!r}")
    devices = trainer.get("devices", 1)
    if isinstance(devices, bool) or (isinstance(devices, int) and devices < 1 and devices != -1) or \
            (isinstance(devices, ListConfig) and not len(devices)):
        raise ConfigError(f"trainer.devices must be a number of devices (>= 1, or -1 for all), auto, or a list "
                          f"of device indices, got {devices!r}")
    launcher = cfg.get("launcher") or {}
    remote = launcher.get("name") == "submitit_slurm" or (launcher.get("name") == "ray" and launcher.get("address"))
    if not wants_gpu(accelerator) or remote:
        return
    import torch  # only for a GPU trainer: the command line starts without torch

    if not torch.cuda.is_available():
        raise ConfigError(f"trainer.accelerator={accelerator} needs a CUDA GPU and this machine has none visible "
                          f"(torch {torch.__version__}); use trainer=cpu")
    wanted = device_count(trainer.get("devices", 1))
    if wanted and wanted > torch.cuda.device_count():
        raise ConfigError(f"trainer.devices={wanted} but this machine has {torch.cuda.device_count()} CUDA GPU(s)")


def check_settings(cfg: DictConfig) -> None:
    """Per-key checks of data, train (the student's, the teacher's, the base student's) and trainer settings,
    and finite numbers everywhere, so a bad value stops a sweep before its first job."""
    check_finite(cfg)
    _apply(cfg.get("data"), "data.", DATA_RULES)
    _apply(cfg.get("train"), "train.", TRAIN_RULES)
    teacher = cfg.get("teacher")
    if isinstance(teacher, DictConfig):
        _apply(teacher, "teacher.", {"seed": "int>=0"})
        _apply(teacher.get("train"), "teacher.train.", PRETRAINED_RULES)
    finetune = cfg.get("finetune")
    if isinstance(finetune, DictConfig):
        _apply(finetune.get("base"), "finetune.base.", PRETRAINED_RULES)
    check_trainer(cfg)
