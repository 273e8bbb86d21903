"""Ablation: switch components of the distillation objective off, by name.

``ablate`` in the config is ``full`` or ``+``-joined component names, e.g.
``temperature+attention_loss``.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

from entrenar_bench.distill.settings import DistillSettings


class Component(NamedTuple):
    label: str  # "temperature scaling": the ablation row reads "without temperature scaling"
    removal: dict  # DistillSettings fields set when removed


COMPONENTS: dict[str, Component] = {
    "temperature": Component("temperature scaling", {"temperature_scaling": False}),  # T=1, no T²
    "attention_loss": Component("attention loss", {"attention_weight": 0.0}),
    "layer_matching": Component("layer matching", {"layer_weight": 0.0}),
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


def describe(removed: list[str], strategy: str | None = None) -> str:
    """Row label of the ablation table, spelled out: ``Full model (combined)``,
    ``without temperature scaling``, ``without temperature scaling and attention loss``."""
    if not removed:
        return f"Full model ({strategy})" if strategy else "Full model"
    return "without " + " and ".join(COMPONENTS[n].label for n in removed)
