"""How many layers a model of a config has, read before anything is built (no torch): a from-teacher student's
chosen teacher layers (:func:`select_layers`), a pretrained model's ``num_hidden_layers`` (its ``config.json``),
a causal LM config's ``num_hidden_layers``, an MLP's hidden layers; None where the config does not say (a
user's own model)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from entrenar_bench.models.model_files import model_config

LAYER_SPEC = re.compile(r"^(first|spread):(\d+)$")
FROM_TEACHER = "entrenar_bench.models.from_teacher.from_teacher"
MLP = "entrenar_bench.models.networks.MLP"
CONV_NET = "entrenar_bench.models.networks.ConvNet"


def select_layers(layers: str | int | Sequence[int], available: int) -> list[int]:
    """Teacher layer indices: ``first:k`` (0..k-1), ``spread:k`` (round(i (n-1) / (k-1)), first and last
    included), or an explicit increasing list. ValueError naming the problem."""
    if isinstance(layers, str):
        match = LAYER_SPEC.match(layers.strip())
        if not match:
            raise ValueError(f"layers must be first:K, spread:K or a list of layer indices, got {layers!r}")
        how, k = match[1], int(match[2])
        if not 1 <= k <= available:
            raise ValueError(f"layers={layers}: the teacher has {available} layers, so K must be 1..{available}")
        if how == "first":
            return list(range(k))
        return [0] if k == 1 else [round(i * (available - 1) / (k - 1)) for i in range(k)]
    chosen = [layers] if isinstance(layers, int) else list(layers)
    if not chosen or any(isinstance(i, bool) or not isinstance(i, int) for i in chosen):
        raise ValueError(f"layers must be first:K, spread:K or a non-empty list of layer indices, got {layers!r}")
    if any(not 0 <= i < available for i in chosen) or chosen != sorted(set(chosen)):
        raise ValueError(f"layers={chosen}: indices must increase, each in 0..{available - 1} (the teacher's layers)")
    return chosen


def pretrained_layers(path: str, where: str) -> int | None:
    """``num_hidden_layers`` of the model saved in ``path`` (None: its config does not say)."""
    config = model_config(Path(path).expanduser(), where)
    layers = config.get("num_hidden_layers", (config.get("text_config") or {}).get("num_hidden_layers"))
    return layers if isinstance(layers, int) and not isinstance(layers, bool) else None


def model_layers(model: Mapping[str, Any], where: str) -> int | None:
    """The layers of the model node ``model`` (a resolved ``_target_`` node; ``where`` its config key)."""
    target = model.get("_target_")
    if target == FROM_TEACHER:
        available = pretrained_layers(str(model["path"]), f"{where}.path={model['path']}")
        if available is None or model.get("layers") is not None:
            return None if available is None else len(select_layers(model["layers"], available))
        keep = model.get("keep")  # a pruning method's count (models/pruning); checked there
        return keep if isinstance(keep, int) and 1 <= keep <= available else available
    if "path" in model:
        return pretrained_layers(str(model["path"]), f"{where}.path={model['path']}")
    if isinstance(model.get("config"), Mapping) and isinstance(model["config"].get("num_hidden_layers"), int):
        return model["config"]["num_hidden_layers"]
    if target == MLP:
        return len(model.get("hidden") or ())
    if target == CONV_NET:
        return len(model.get("channels") or ()) + 1  # each conv block and the fc layer
    return None
