"""What a distillation strategy sets: the weights of the objective's terms (``conf/distill/*.yaml``).

Plain data, no torch: the CLI and the Hydra parent process read and check settings
without loading the training stack.
"""

from __future__ import annotations

from dataclasses import dataclass

STRATEGY_ORDER = ("kd", "progressive", "attention", "mse", "combined", "none")  # conf/distill, the spec's table order


@dataclass
class DistillSettings:
    """Also the ``distill`` schema (``entrenar_bench.run.schema``): a key not listed here is an error."""

    name: str = "kd"
    logit_loss: str = "kl"  # kl | mse | none
    temperature: float = 4.0
    alpha: float = 0.7
    temperature_scaling: bool = True  # False: T forced to 1 and no T² (ablation)
    layer_weight: float = 0.0
    attention_weight: float = 0.0

    @property
    def effective_temperature(self) -> float:
        return self.temperature if self.temperature_scaling else 1.0

    @property
    def needs_teacher(self) -> bool:
        return (self.logit_loss != "none" and self.alpha > 0) or self.needs_hidden

    @property
    def needs_hidden(self) -> bool:
        return self.layer_weight > 0 or self.attention_weight > 0
