"""Distillation loss terms, each named after its paper, each a plain function of tensors."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def hinton_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float, scale_t2: bool = True) -> torch.Tensor:
    """Hinton et al. 2015: ``T² · KL(softmax(z_t/T) ‖ softmax(z_s/T))``, batch mean.

    The T² factor keeps the gradient scale constant across T; ``scale_t2=False`` drops it
    (the ablation of temperature scaling runs at T=1, where it is 1 anyway).
    """
    kl = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=-1),
        F.softmax(teacher_logits / temperature, dim=-1),
        reduction="batchmean",
    )
    return kl * temperature**2 if scale_t2 else kl


def logit_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """Logit matching (Ba & Caruana 2014): ``mean((z_s − z_t)²)``."""
    return F.mse_loss(student_logits, teacher_logits)


def hidden_state_mse(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """PKD (Sun et al. 2019) layer matching: mean over pairs of ``MSE(P_i(h_s^i), h_t^j)``.

    ``pairs`` holds already projected student states next to their teacher states.
    """
    return torch.stack([F.mse_loss(projected, target) for projected, target in pairs]).mean()


def attention_map(features: torch.Tensor) -> torch.Tensor:
    """Zagoruyko & Komodakis 2017: ``a(f) = normalize(f.pow(2).mean(channel dim).flatten())``."""
    return F.normalize(features.pow(2).mean(dim=1).flatten(1), dim=1)


def attention_transfer(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Attention transfer: ``Σ_l mean((a(f_s^l) − a(f_t^l))²)`` over paired feature maps."""
    return torch.stack([(attention_map(s) - attention_map(t)).pow(2).mean() for s, t in pairs]).sum()


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy with the targets in float32: batch mean per example (``mask`` None), else the mean over
    the mask's target tokens of (B, T, V) logits."""
    if mask is None:
        return F.cross_entropy(logits, targets)
    from entrenar_bench.distill.token_losses import masked_token_mean

    per_token = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="none")
    return masked_token_mean(per_token.view_as(targets), mask)
