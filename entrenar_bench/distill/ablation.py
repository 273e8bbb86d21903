"""Ablation: switch components of the distillation objective off, by name.

``ablate`` in the config is ``full`` or ``+``-joined component names, e.g.
``temperature+attention_loss``.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from entrenar_bench.distill.settings import DistillSettings


class Component(NamedTuple):
    label: str  # "- temperature scaling"
    short: str  # "- temp - attn" for removed pairs
    removal: dict  # DistillSettings fields set when removed


COMPONENTS: dict[str, Component] = {
    "temperature": Component("temperature scaling", "temp", {"temperature_scaling": False}),  # T=1, no T²
    "attention_loss": Component("attention loss", "attn", {"attention_weight": 0.0}),
    "layer_matching": Component("layer matching", "layers", {"layer_weight": 0.0}),
}
FULL = "full"


def parse_ablate(value: str) -> list[str]:
    """``"full"`` -> []; ``"temperature+attention_loss"`` -> both names; ValueError for unknown names."""
    if value == FULL:
        return []
    names = str(value).split("+")
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown or not value:
        raise ValueError(f"unknown ablation component {', '.join(unknown) or repr(value)}; "
                         f"known: {', '.join(COMPONENTS)} (or {FULL})")
    return names


def ablate_value(removed: list[str]) -> str:
    return "+".join(removed) if removed else FULL


def apply_ablation(settings: DistillSettings, removed: list[str]) -> DistillSettings:
    changes: dict = {}
    for name in removed:
        changes.update(COMPONENTS[name].removal)
    return dataclasses.replace(settings, **changes)


def describe(removed: list[str]) -> str:
    """Row label of the spec's ablation table."""
    if not removed:
        return "Full model"
    if len(removed) == 1:
        return f"- {COMPONENTS[removed[0]].label}"
    return " ".join(f"- {COMPONENTS[n].short}" for n in removed)
