"""GPU cost models (``cost/pricing/*.yaml``: plain data read here, not a Hydra config group) and the pricing of
measured training time.

Pricing formula, for a run measured on device ``d`` and priced on GPU ``g``::

    hours_on_g = measured_hours * factor(d) / factor(g)
    cost       = hours_on_g * price_per_hour(g)

``factor`` is throughput relative to the A100-80GB (1.0). A measured device matches a cost model
when its name (``cuda: NVIDIA A100-SXM4-80GB``) matches the model's ``device_pattern``. A device
with no known factor (every CPU, any unlisted GPU) is *assumed* to be as fast as the A100-80GB
(factor 1.0); reports say so wherever that assumption is used.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omegaconf import MISSING, OmegaConf

PRICING_DIR = Path(__file__).resolve().parent / "pricing"  # one YAML per priced GPU (the spec's table)
REFERENCE = "a100-80gb"
REFERENCE_FACTOR = 1.0
FIELDS = ("cost_per_hour", "memory_gb", "performance_factor")
PREFIX = "pricing."  # a cost-model override: pricing.<key>=<value> (after --gpu TYPE)
MIXED = "mixed: "  # device of a point whose runs were measured on several devices


class CostModelError(ValueError):
    """An unknown GPU name or an invalid cost-model value (one line)."""


def known_pricings() -> list[str]:
    """The GPU types priced in ``cost/pricing/`` (what ``--gpu`` takes)."""
    return sorted(p.stem for p in PRICING_DIR.glob("*.yaml"))


@dataclass(frozen=True)
class CostModel:
    """Price per hour (USD), memory (GB) and performance factor (A100-80GB = 1.0) of one GPU."""

    name: str
    cost_per_hour: float
    memory_gb: float
    performance_factor: float
    device_pattern: str | None = None

    def __post_init__(self) -> None:
        for key in FIELDS:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise CostModelError(f"{PREFIX}{key} must be a number, got {value!r}")
            if value <= 0:
                raise CostModelError(f"{PREFIX}{key} must be > 0, got {value!r}")

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> CostModel:
        missing = [k for k in FIELDS if k not in cfg or cfg[k] == MISSING]
        if missing:
            raise CostModelError(f"gpu {cfg.get('name', '?')}: set {', '.join(f'{PREFIX}{k}' for k in missing)}")
        return cls(str(cfg["name"]), *(cfg[k] for k in FIELDS), cfg.get("device_pattern"))

    @classmethod
    def named(cls, name: str, overrides: Sequence[str] = ()) -> CostModel:
        """The model in ``cost/pricing/<name>.yaml`` with ``pricing.<key>=<value>`` overrides applied."""
        path = PRICING_DIR / f"{name}.yaml"
        if not re.fullmatch(r"[\w.\-]+", name) or not path.is_file():
            raise CostModelError(f"unknown GPU {name!r}; known: {', '.join(known_pricings())}")
        cfg = OmegaConf.load(path)
        for override in overrides:
            key, sep, text = override.partition("=")
            field = key.removeprefix(PREFIX)
            if not sep or not key.startswith(PREFIX) or field not in cfg.keys():  # noqa: SIM118 (`in` skips ??? keys)
                raise CostModelError(f"bad cost-model override {override!r}; expected {PREFIX}<key>=<value> with key "
                                     f"one of {', '.join(str(k) for k in cfg)}")
            if field not in FIELDS:
                cfg[field] = text
                continue
            try:
                cfg[field] = float(text)
            except ValueError:
                raise CostModelError(f"{PREFIX}{field} must be a number, got {text!r}") from None
        return cls.from_config(OmegaConf.to_container(cfg))

    @classmethod
    def a100_80gb(cls) -> CostModel:
        return cls.named("a100-80gb")

    @classmethod
    def v100(cls) -> CostModel:
        return cls.named("v100")

    @classmethod
    def t4(cls) -> CostModel:
        return cls.named("t4")

    @classmethod
    def custom(cls, cost_per_hour: float, memory_gb: float, performance_factor: float,
               name: str = "custom") -> CostModel:
        return cls(name, cost_per_hour, memory_gb, performance_factor)

    def matches(self, device: str) -> bool:
        return bool(self.device_pattern) and re.search(self.device_pattern, device) is not None

    def hours(self, measured_hours: float, measured_factor: float) -> float:
        """Hours on this GPU: measured hours scaled by the measured device's factor over this GPU's."""
        return measured_hours * measured_factor / self.performance_factor

    def cost(self, hours: float) -> float:
        return hours * self.cost_per_hour

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measured_factor(device: str | None) -> tuple[float, bool]:
    """The performance factor of the device a run was measured on, and whether it is assumed.

    ``None`` means hours already on the reference GPU (factor 1.0, not an assumption).
    """
    if device is None:
        return REFERENCE_FACTOR, False
    if device.startswith(MIXED):  # a configuration whose runs ran on different devices: no single factor
        return REFERENCE_FACTOR, True
    for pattern, factor in _device_factors():
        if re.search(pattern, device):
            return factor, False
    return REFERENCE_FACTOR, True


@functools.cache
def _device_factors() -> tuple[tuple[str, float], ...]:
    """(device_pattern, performance_factor) of every packaged cost model that has a pattern."""
    cfgs = [OmegaConf.load(PRICING_DIR / f"{name}.yaml") for name in known_pricings()]
    return tuple((c.device_pattern, float(c.performance_factor)) for c in cfgs if c.get("device_pattern"))


def money(value: float) -> str:
    """Dollars: cents from $1 up, three significant digits below (measured hours can be tiny)."""
    return f"${value:.2f}" if value >= 1 else f"${value:.3g}"


def pricing_formula(pricing: CostModel) -> str:
    return (f"hours on {pricing.name} = measured hours x factor(measured device) / "
            f"{float(pricing.performance_factor)!r}; cost = hours x ${pricing.cost_per_hour:.2f}/h")


def assumption_text(devices: Sequence[str]) -> str | None:
    """The plain statement of the factor assumption for devices with no known factor, if any."""
    unknown = sorted(d for d in devices if measured_factor(d)[1])
    if not unknown:
        return None
    return (f"measured on {'; '.join(unknown)}, which has no performance factor: its measured hours are taken "
            f"as A100-80GB hours (factor {REFERENCE_FACTOR!r}). This is an assumption, not a measurement.")
