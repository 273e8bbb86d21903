"""Checks before launch of what a config's models are made of, one line each (ConfigError): a from-teacher
student's layers exist in its teacher (``student.layers``), layer matching and attention transfer have layers
on both sides, and LoRA's named target modules exist in the model it adapts. Call :func:`check_structure` on
a config whose references were made local (models/references.py ``with_local_files``). Torch is imported only
to list a model's modules (built on the meta device: no weights read) where LoRA names its targets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

from entrenar_bench.errors import ConfigError
from entrenar_bench.models.layers import model_layers

PLACEHOLDER_INPUT = {"input_shape": (1, 8, 8), "num_classes": 2}  # names a network's modules; sizes do not matter


def _node(cfg: DictConfig, key: str) -> dict[str, Any] | None:
    """The resolved node at ``key``, its unset (``???``) values left out (as ``key in node`` sees them)."""
    node = OmegaConf.select(cfg, key, default=None)
    if not isinstance(node, DictConfig):
        return None
    return {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if not OmegaConf.is_missing(node, k)}


def _layers(cfg: DictConfig, role: str) -> int | None:
    model = _node(cfg, f"{role}.model")
    if model is None:
        return None
    try:
        return model_layers(model, f"{role}.model")
    except ValueError as e:  # a from-teacher student's layers its teacher does not have
        raise ConfigError(f"student.{e}" if role == "student" else f"{role}.model: {e}") from None


def check_layers(cfg: DictConfig) -> None:
    """A from-teacher student's layers exist in its teacher; both models have layers where the strategy matches
    them (``layer_weight``, ``attention_weight``)."""
    distill = cfg.get("distill") if isinstance(cfg.get("distill"), DictConfig) else {}
    weights = [key for key in ("layer_weight", "attention_weight") if distill.get(key)]
    layers = {role: _layers(cfg, role) for role in ("teacher", "student")}  # a bad student.layers: refused here
    for role, count in layers.items():
        if weights and count == 0:
            raise ConfigError(f"distill={distill.get('name')} matches layers (distill.{weights[0]}) but the {role} "
                              f"{OmegaConf.select(cfg, f'{role}.name', default='')} has none ({role}.model: 0 layers)")


def module_names(model: Mapping[str, Any]) -> list[str] | None:
    """Every submodule name of the model node ``model``, built on the meta device (None: it cannot be built
    without its data)."""
    import torch
    from hydra.utils import instantiate

    with torch.device("meta"):
        if "path" in model or isinstance(model.get("config"), Mapping):
            from transformers import AutoConfig, AutoModelForCausalLM

            config = (AutoConfig.from_pretrained(str(model["path"]), local_files_only=True) if "path" in model
                      else instantiate(model["config"]))
            network = AutoModelForCausalLM.from_config(config)
        else:
            try:
                network = instantiate(model, **PLACEHOLDER_INPUT)
            except Exception:  # noqa: BLE001 (a user's model that needs other arguments: left to the run)
                return None
    return [name for name, _ in network.named_modules() if name]


def check_lora_targets(cfg: DictConfig) -> None:
    """Each of ``finetune.target_modules`` names a module of the model LoRA adapts (peft's rule: the name
    itself or its last dotted parts)."""
    targets = OmegaConf.select(cfg, "finetune.target_modules", default=None)
    if OmegaConf.select(cfg, "finetune.method", default=None) != "lora" or targets is None:
        return
    key = "finetune.base.model" if _node(cfg, "finetune.base.model") is not None else "student.model"
    names = module_names(_node(cfg, key))
    if names is None:
        return
    missing = [t for t in targets if not any(n == t or n.endswith(f".{t}") for n in names)]
    if missing:
        leaves = sorted({n.rsplit(".", 1)[-1] for n in names if not n.rsplit(".", 1)[-1].isdigit()})
        raise ConfigError(f"finetune.target_modules: {', '.join(map(str, missing))} not in the model it adapts "
                          f"({key}; its modules: {', '.join(leaves)})")


def check_structure(cfg: DictConfig) -> None:
    """Every check of this module."""
    check_layers(cfg)
    check_lora_targets(cfg)
