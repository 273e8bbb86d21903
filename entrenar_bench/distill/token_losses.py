"""Token-level distillation divergences for causal language models.

Every function takes ``student_logits`` and ``teacher_logits`` of shape (B, T, V), in any float
dtype, and a (B, T) ``mask`` (bool or 0/1; True marks a position that counts, so padding and
prompt positions are False). Logits are cast to float32 first; the teacher is detached inside, so
gradients reach the student only. The per-token divergence is summed over the vocabulary, then
averaged over unmasked tokens; with no unmasked token the result is a zero that keeps its graph.
Each returns a 0-dim float32 tensor.

Notation: ``p = softmax(z_t / T)`` (teacher), ``q = softmax(z_s / T)`` (student), T = temperature.
Only ``forward_kl`` and ``reverse_kl`` multiply by T² (Hinton's gradient-scale correction, which
``scale_t2=False`` drops); ``jsd``, ``skew_kl``, ``skew_reverse_kl`` and ``tvd`` are left unscaled
(jsd and tvd are bounded, by ln 2 at β=½ and by 1), and ``logit_mse`` takes no temperature.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from entrenar_bench.distill.settings import DistillSettings


def _log_probs(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log q, log p)`` in float32, the teacher detached."""
    log_q = torch.log_softmax(student_logits.float() / temperature, dim=-1)
    log_p = torch.log_softmax(teacher_logits.detach().float() / temperature, dim=-1)
    return log_q, log_p


def _kl(log_a: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    """Per-token ``KL(a ‖ b) = Σ_v a (log a − log b)`` from log-probabilities (a = 0 gives 0)."""
    return (log_a.exp() * (log_a - log_b)).sum(dim=-1)


def _log_mix(log_a: torch.Tensor, log_b: torch.Tensor, weight: float) -> torch.Tensor:
    """``log(w·a + (1−w)·b)`` by logsumexp; w = 0 or 1 gives a −inf term, which logsumexp drops."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"mixture weight must lie in [0, 1], got {weight}")
    log_w = math.log(weight) if weight > 0 else -math.inf
    log_1mw = math.log1p(-weight) if weight < 1 else -math.inf
    return torch.logsumexp(torch.stack([log_w + log_a, log_1mw + log_b]), dim=0)


def _masked_mean(per_token: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of (B, T) ``per_token`` over the True positions of ``mask``; 0 when there are none."""
    mask = mask.bool()
    return torch.where(mask, per_token, 0.0).sum() / mask.sum().clamp(min=1)


def forward_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
               temperature: float = 1.0, scale_t2: bool = True) -> torch.Tensor:
    """Hinton et al. 2015 (GKD's forward KL, Agarwal et al. 2024): ``T² · KL(p ‖ q)``; ``scale_t2=False`` drops T²."""
    log_q, log_p = _log_probs(student_logits, teacher_logits, temperature)
    kl = _masked_mean(_kl(log_p, log_q), mask)
    return kl * temperature**2 if scale_t2 else kl


def reverse_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
               temperature: float = 1.0, scale_t2: bool = True) -> torch.Tensor:
    """MiniLLM (Gu et al. 2024), mode-seeking: ``T² · KL(q ‖ p)``, T and T² handled as in ``forward_kl``."""
    log_q, log_p = _log_probs(student_logits, teacher_logits, temperature)
    kl = _masked_mean(_kl(log_q, log_p), mask)
    return kl * temperature**2 if scale_t2 else kl


def jsd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
        temperature: float = 1.0, beta: float = 0.5) -> torch.Tensor:
    """Generalised Jensen–Shannon, GKD (Agarwal et al. 2024): ``β·KL(p ‖ m) + (1−β)·KL(q ‖ m)``.

    ``m = β·p + (1−β)·q``. Both endpoints are exactly 0 (m equals q at β=0 and p at β=1); near them,
    ``jsd(β=ε)/ε → KL(p ‖ q)`` (forward) and ``jsd(β=1−ε)/ε → KL(q ‖ p)`` (reverse) as ε → 0, with
    an O(ε) error (checked numerically; the tests check it too). At β=½ it is the JSD, ≤ ln 2.
    """
    log_q, log_p = _log_probs(student_logits, teacher_logits, temperature)
    log_m = _log_mix(log_p, log_q, beta)
    per_token = beta * _kl(log_p, log_m) + (1 - beta) * _kl(log_q, log_m)
    return _masked_mean(per_token, mask)


def skew_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
            temperature: float = 1.0, lam: float = 0.1) -> torch.Tensor:
    """DistiLLM (Ko et al. 2024) skew KL: ``KL(p ‖ λ·p + (1−λ)·q)``; λ = 0 is the forward KL."""
    log_q, log_p = _log_probs(student_logits, teacher_logits, temperature)
    return _masked_mean(_kl(log_p, _log_mix(log_p, log_q, lam)), mask)


def skew_reverse_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
                    temperature: float = 1.0, lam: float = 0.1) -> torch.Tensor:
    """DistiLLM (Ko et al. 2024) skew reverse KL: ``KL(q ‖ (1−λ)·p + λ·q)``; λ = 0 is the reverse KL."""
    log_q, log_p = _log_probs(student_logits, teacher_logits, temperature)
    return _masked_mean(_kl(log_q, _log_mix(log_q, log_p, lam)), mask)


def tvd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
        temperature: float = 1.0) -> torch.Tensor:
    """Total variation distance (as used in DistillSpec, Zhou et al. 2024): ``½ · Σ_v |p − q|``, in [0, 1]."""
    log_q, log_p = _log_probs(student_logits, teacher_logits, temperature)
    return _masked_mean(0.5 * (log_p.exp() - log_q.exp()).abs().sum(dim=-1), mask)


def logit_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Logit matching (Ba & Caruana 2014): ``mean_v (z_s − z_t)²`` per token, no temperature."""
    diff = student_logits.float() - teacher_logits.detach().float()
    return _masked_mean(diff.pow(2).mean(dim=-1), mask)


def hidden_state_mse(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], mask: torch.Tensor) -> torch.Tensor:
    """PKD (Sun et al. 2019) on token states: mean over layer pairs of the masked token mean of
    ``mean_d (P(h_s) − h_t)²``, each pair a projected (B, T, D_t) student state and its teacher state."""
    return torch.stack([_masked_mean((s.float() - t.detach().float()).pow(2).mean(dim=-1), mask)
                        for s, t in pairs]).mean()


def attention_kl(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], mask: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """MiniLM (Wang et al. 2020) attention transfer: mean over layer pairs of the masked mean over query
    positions of ``KL(ā_t ‖ ā_s) = Σ_k ā_t (log ā_t − log ā_s)``, with ``ā`` a layer's (B, H, T, T)
    attention probabilities averaged over heads (so teacher and student may have different head counts).
    Positions a causal mask hides are 0 on both sides and add nothing."""
    terms = []
    for student, teacher in pairs:
        a_s, a_t = student.float().mean(dim=1), teacher.detach().float().mean(dim=1)
        per_query = (a_t * (a_t.clamp_min(eps).log() - a_s.clamp_min(eps).log())).sum(dim=-1)
        terms.append(_masked_mean(per_query, mask))
    return torch.stack(terms).mean()


TOKEN_LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "kl": forward_kl,
    "reverse_kl": reverse_kl,
    "jsd": jsd,
    "skew_kl": skew_kl,
    "skew_reverse_kl": skew_reverse_kl,
    "tvd": tvd,
    "mse": logit_mse,
}


def token_divergence(name: str, student_logits: torch.Tensor, teacher_logits: torch.Tensor, mask: torch.Tensor,
                     temperature: float = 1.0, scale_t2: bool = True, beta: float = 0.5, lam: float = 0.1) -> torch.Tensor:
    """The ``TOKEN_LOSSES[name]`` loss, passed only the options it takes (see the module notes on T²)."""
    if name not in TOKEN_LOSSES:
        raise ValueError(f"unknown token loss {name!r}; known: {', '.join(TOKEN_LOSSES)}")
    options = {
        "kl": {"temperature": temperature, "scale_t2": scale_t2},
        "reverse_kl": {"temperature": temperature, "scale_t2": scale_t2},
        "jsd": {"temperature": temperature, "beta": beta},
        "skew_kl": {"temperature": temperature, "lam": lam},
        "skew_reverse_kl": {"temperature": temperature, "lam": lam},
        "tvd": {"temperature": temperature},
        "mse": {},
    }[name]
    return TOKEN_LOSSES[name](student_logits, teacher_logits, mask, **options)


def settings_divergence(settings: DistillSettings, student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                        mask: torch.Tensor) -> torch.Tensor:
    """The divergence ``settings.logit_loss`` at the settings' temperature (T², unless ablated), β and λ."""
    return token_divergence(settings.logit_loss, student_logits, teacher_logits, mask,
                            temperature=settings.effective_temperature, scale_t2=settings.temperature_scaling,
                            beta=settings.beta, lam=settings.skew_lambda)


def token_top1_matches(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token accuracy counts: ``(#unmasked positions where argmax_v logits == target, #unmasked)``.

    ``targets[b, t]`` is the token that ``logits[b, t]`` predicts (already shifted by one).
    """
    mask = mask.bool()
    correct = (logits.argmax(dim=-1) == targets) & mask
    return correct.sum(), mask.sum()


def masked_token_mean(per_token: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of a (B, T) per-token value over the True positions of ``mask`` (0 when there are none)."""
    return _masked_mean(per_token, mask)


def kl_from_probs(probs: torch.Tensor, student_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``KL(P ‖ q) = Σ_v P log P − P log q`` against a known (B, T, V) distribution ``P`` that may hold
    zeros (``0 log 0 = 0``), e.g. a source's true next-token distribution; masked token mean."""
    probs = probs.float()
    log_q = torch.log_softmax(student_logits.float(), dim=-1)
    return _masked_mean((torch.xlogy(probs, probs) - probs * log_q).sum(dim=-1), mask)
