"""Distillation loss terms, each named after its paper, each a plain function of tensors. Which logit term a
config chooses, and the settings each reads, is ``logit_terms.py``'s registry (a user's term joins by dotted path).

Logit terms are token level: ``student_logits`` and ``teacher_logits`` of shape (B, T, V), in any float
dtype, and a (B, T) ``mask`` (bool or 0/1; True marks a position that counts, so padding and prompt
positions are False; None: every position counts). Logits are cast to float32; the teacher is detached
inside, so gradients reach the student only. The per-position divergence is summed over the vocabulary,
then averaged over the counted positions; with none counted the result is a zero that keeps its graph.
Each returns a 0-dim float32 tensor. Per-example KD (images) is the one-token case: (B, V) logits go in as
(B, 1, V) views with no mask (:func:`example_divergence`), and ``kl`` there is Hinton's
``T²·F.kl_div(log q, p, reduction="batchmean")`` (p taken as ``exp(log p)``, as every divergence here takes
it, where ``F.kl_div``'s form used ``softmax``: the same to one unit in the last place).

Notation: ``p = softmax(z_t / T)`` (teacher), ``q = softmax(z_s / T)`` (student), T = temperature.
Only ``forward_kl`` and ``reverse_kl`` multiply by T² (Hinton's gradient-scale correction, which
``scale_t2=False`` drops); ``jsd``, ``skew_kl``, ``skew_reverse_kl`` and ``tvd`` are left unscaled
(jsd and tvd are bounded, by ln 2 at β=½ and by 1), and ``logit_mse`` takes no temperature.

Numerics: a −inf logit (a masked vocabulary) is a probability of exactly 0 and adds ``0·log(0/b) = 0``,
``F.kl_div``'s convention, to the value and nothing to the gradient, on either side. A KL whose first
argument has mass where its second has none is +inf, its true value; the mixtures (jsd, skew) and tvd stay
finite. Mixtures are taken by logsumexp of log-probabilities, so ±50 logits do not underflow into log 0.

Memory: the divergences run over chunks of ``chunk_tokens`` positions (0: :func:`chunk_positions` picks
about ``AUTO_CHUNK_ELEMENTS`` logits per chunk). A batch that fits in one chunk is computed in one piece by
plain autograd (so the small tasks compute exactly what they did); a longer one holds one chunk's float32
intermediates and one gradient buffer the size of the student's logits, never several (B, T, V) copies: each
chunk's gradient is taken in the forward pass (as Liger's fused losses do), the values are the same and the
gradients equal up to rounding. The teacher may also be a :class:`TopKTeacher` (its k log-probabilities at T = 1
and the tail mass); its ``tail_rule`` says what every divergence compares (see :class:`TopKTeacher`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import torch
import torch.nn.functional as F

from entrenar_bench.distill import logit_terms
from entrenar_bench.distill.settings import TOP_K_TAILS, DistillSettings

AUTO_CHUNK_ELEMENTS = 1 << 23  # chunk_tokens = 0: positions × V per chunk, 32 MiB per float32 intermediate
TAIL_FLOOR = 1e-30  # a top-k teacher's tail mass is floored here: its log stays finite


class TopKTeacher(NamedTuple):
    """A teacher kept as its top k per position (DistillKit, EasyDistill): ``ids`` (…, k), their
    ``log_probs`` at T = 1 (any float dtype), the vocabulary size, the remaining mass ``tail`` (…) (None:
    ``1 − Σ_k p``), the rule for that tail (``distill.top_k_tail``) and, where the store keeps them, ``targets`` (…):
    the log-prob at T = 1 of the token read next at each position (a causal LM's; ``cross_term.py`` needs it):

    - ``spread``: the tail spread evenly over the other V − k tokens; as logits ``log p̂``, the k values at their
      ids and ``log(tail / (V − k))`` elsewhere. Pushes each student tail token toward one flat value, and
      tempering it tempers the flattened distribution, not the teacher's.
    - ``bucket`` (TRL's server distillation): both sides over k + 1 categories, the k ids and the tail as one,
      the student's tail ``1 − Σ_k q`` (``logsumexp`` of its other logits). By the data-processing inequality a
      lower bound of the divergence from the full teacher, missing only the tail's shape (its share of the
      value is about the tail mass). Needs T = 1: the teacher's tempered tail is unknown.
    - ``drop`` (DistillKit's choice): both sides renormalised over the k ids; exact for the teacher conditioned
      on its top k at any temperature, blind to the mass outside them.
    """

    ids: torch.Tensor
    log_probs: torch.Tensor
    vocab_size: int
    tail: torch.Tensor | None = None
    tail_rule: str = "spread"
    targets: torch.Tensor | None = None

    def tail_mass(self) -> torch.Tensor:
        """The (…) mass outside the k entries, floored at ``TAIL_FLOOR``: stored, or ``1 − Σ_k p``."""
        tail = 1 - self.log_probs.float().exp().sum(dim=-1) if self.tail is None else self.tail.float()
        return tail.clamp_min(TAIL_FLOOR)

    def logits(self) -> torch.Tensor:
        """The dense (…, V) ``log p̂`` of the spread rule."""
        return top_k_teacher_logits(self.ids, self.log_probs, self.tail_mass(), self.vocab_size)

    def to(self, device: torch.device) -> TopKTeacher:
        return self.rows(slice(None), device)

    def rows(self, index, device: torch.device | None = None) -> TopKTeacher:
        """Rows ``index`` of each array (on ``device``: where they are)."""
        def part(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor[index].to(device or tensor.device)

        return self._replace(ids=part(self.ids), log_probs=part(self.log_probs), tail=part(self.tail),
                             targets=part(self.targets))


def masked_token_mean(per_token: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of a (B, T) per-position value over the True positions of ``mask`` (None: all); 0 when there are none."""
    if mask is None:
        return per_token.mean()
    mask = mask.bool()
    return torch.where(mask, per_token, 0.0).sum() / mask.sum().clamp(min=1)


def chunk_positions(chunk_tokens: int, vocab_size: int) -> int:
    """Positions per chunk: ``chunk_tokens``, or for 0 as many as make ``AUTO_CHUNK_ELEMENTS`` logits."""
    return chunk_tokens if chunk_tokens > 0 else max(1, AUTO_CHUNK_ELEMENTS // vocab_size)


class _ChunkedTokenMean(torch.autograd.Function):
    """Masked mean over (N, V) rows of ``per_token(student_rows, *teacher_rows)``, ``rows`` at a time; each
    chunk's gradient is taken in the forward pass into one (N, V) buffer, scaled in place in the backward."""

    @staticmethod
    def forward(ctx, student, mask, per_token, rows, *teacher):
        weights = mask.float() / mask.sum().clamp(min=1)  # d mean / d per-position value
        grad = torch.empty_like(student)
        values = []
        for start in range(0, len(student), rows):
            part = slice(start, start + rows)
            with torch.enable_grad():
                chunk = student[part].detach().requires_grad_()
                value = per_token(chunk, *(t[part] for t in teacher))
                grad[part] = torch.autograd.grad(value, chunk, grad_outputs=weights[part])[0]
            values.append(value.detach())
        ctx.save_for_backward(grad)
        ctx.num_teacher = len(teacher)
        return masked_token_mean(torch.cat(values), mask)

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors  # a second backward through the same graph raises (modified in place)
        return grad.mul_(grad_output), None, None, None, *([None] * ctx.num_teacher)


def _token_mean(per_token: Callable[..., torch.Tensor], student_logits: torch.Tensor, mask: torch.Tensor | None,
                chunk_tokens: int, *teacher: torch.Tensor) -> torch.Tensor:
    """``masked_token_mean(per_token(student_logits, *teacher), mask)``, computed chunk by chunk over
    positions when the batch holds more than one chunk; ``teacher`` tensors share the (B, T) leading shape."""
    lead = student_logits.shape[:-1]
    n, rows = math.prod(lead), chunk_positions(chunk_tokens, student_logits.shape[-1])
    if n <= rows:
        return masked_token_mean(per_token(student_logits, *teacher), mask)
    mask = torch.ones(lead, dtype=torch.bool, device=student_logits.device) if mask is None else mask.bool()
    flat = [x.reshape(n, *x.shape[len(lead):]) for x in (student_logits, *teacher)]
    if torch.is_grad_enabled() and student_logits.requires_grad:
        return _ChunkedTokenMean.apply(flat[0], mask.reshape(n), per_token, rows, *flat[1:])
    with torch.no_grad():
        values = [per_token(*parts) for parts in zip(*(x.split(rows) for x in flat))]
    return masked_token_mean(torch.cat(values).view(lead), mask)


def _kl(a: torch.Tensor, log_a: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    """Per position ``KL(a ‖ b) = Σ_v a (log a − log b)``, with ``0·log(0/b) = 0``: a zero probability adds 0
    to the value and to the gradient (no 0·∞); a > 0 where b = 0 gives +inf."""
    return (a * torch.where(a > 0, log_a - log_b, 0.0)).sum(dim=-1)


def _log_mix(log_a: torch.Tensor, log_b: torch.Tensor, weight: float) -> torch.Tensor:
    """``log(w·a + (1−w)·b)`` by logsumexp (w = 0 or 1 gives a −inf term, which logsumexp drops); −inf
    inputs are floored at the lowest float, so that where a = b = 0 the value (unused: its weight is 0) and
    its gradient stay finite."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"mixture weight must lie in [0, 1], got {weight}")
    log_w = math.log(weight) if weight > 0 else -math.inf
    log_1mw = math.log1p(-weight) if weight < 1 else -math.inf
    lowest = torch.finfo(log_a.dtype).min
    return torch.logsumexp(torch.stack([log_w + log_a.clamp_min(lowest), log_1mw + log_b.clamp_min(lowest)]), dim=0)


def _log_probs(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log q, log p)`` in float32, the teacher detached."""
    log_q = torch.log_softmax(student.float() / temperature, dim=-1)
    log_p = torch.log_softmax(teacher.detach().float() / temperature, dim=-1)
    return log_q, log_p


def _forward_kl_terms(student, teacher, temperature):
    log_q, log_p = _log_probs(student, teacher, temperature)
    return _kl(log_p.exp(), log_p, log_q)


def _reverse_kl_terms(student, teacher, temperature):
    log_q, log_p = _log_probs(student, teacher, temperature)
    return _kl(log_q.exp(), log_q, log_p)


def _jsd_terms(student, teacher, temperature, beta):
    if beta == 0.0:
        return _forward_kl_terms(student, teacher, temperature)
    if beta == 1.0:
        return _reverse_kl_terms(student, teacher, temperature)
    log_q, log_p = _log_probs(student, teacher, temperature)
    log_m = _log_mix(log_p, log_q, beta)
    return beta * _kl(log_p.exp(), log_p, log_m) + (1 - beta) * _kl(log_q.exp(), log_q, log_m)


def _skew_kl_terms(student, teacher, temperature, lam):
    log_q, log_p = _log_probs(student, teacher, temperature)
    return _kl(log_p.exp(), log_p, _log_mix(log_p, log_q, lam))


def _skew_reverse_kl_terms(student, teacher, temperature, lam):
    log_q, log_p = _log_probs(student, teacher, temperature)
    return _kl(log_q.exp(), log_q, _log_mix(log_q, log_p, lam))


def _tvd_terms(student, teacher, temperature):
    log_q, log_p = _log_probs(student, teacher, temperature)
    return 0.5 * (log_p.exp() - log_q.exp()).abs().sum(dim=-1)


def _mse_terms(student, teacher):
    return (student.float() - teacher.detach().float()).pow(2).mean(dim=-1)


def top_k_teacher_logits(ids: torch.Tensor, log_probs: torch.Tensor, tail: torch.Tensor,
                         vocab_size: int) -> torch.Tensor:
    """The dense (…, V) ``log p̂`` of a top-k teacher: the k log-probs at their ids, ``log(tail / (V − k))``
    elsewhere (``tail`` already floored)."""
    k = ids.shape[-1]
    out = (tail / max(vocab_size - k, 1)).log().unsqueeze(-1).expand(*ids.shape[:-1], vocab_size).clone()
    return out.scatter_(-1, ids.long(), log_probs.float())


def _sparse_forward_kl_terms(student, ids, log_probs, tail, vocab_size, temperature):
    """``KL(p ‖ q)`` per position for a top-k teacher at temperature T, from its k entries and its tail.

    With ``ℓ`` the k log-probs, ``r`` the tail mass and ``n = V − k``, the tempered teacher is
    ``p_i = exp(ℓ_i/T − log Z)`` on the k ids and ``p_o = exp(log(r/n)/T − log Z)`` on each other token,
    ``log Z = logsumexp(ℓ/T ∪ {log n + log(r/n)/T})``. With ``log q_v = z_v/T − lse(z/T)``:
    ``KL = Σ_i p_i (log p_i − log q_i) + p_o·(n·(log p_o + lse) − Σ_{v∉k} z_v/T)``, where
    ``Σ_{v∉k} z_v = Σ_v z_v − Σ_i z_i``: no (…, V) teacher is built.
    """
    z = student.float() / temperature
    lse = torch.logsumexp(z, dim=-1, keepdim=True)
    z_top = z.gather(-1, ids.long())
    top = log_probs.float() / temperature
    n = vocab_size - ids.shape[-1]
    if n == 0:
        log_p = top - torch.logsumexp(top, dim=-1, keepdim=True)
        return _kl(log_p.exp(), log_p, z_top - lse)
    log_other = ((tail / n).log() / temperature).unsqueeze(-1)  # each other token's tempered logit
    log_z = torch.logaddexp(torch.logsumexp(top, dim=-1, keepdim=True), math.log(n) + log_other)
    log_p, log_p_other = top - log_z, log_other - log_z
    rest = n * (log_p_other + lse) - (z.sum(dim=-1, keepdim=True) - z_top.sum(dim=-1, keepdim=True))
    return _kl(log_p.exp(), log_p, z_top - lse) + (log_p_other.exp() * rest).squeeze(-1)


def _coarse(student: torch.Tensor, ids: torch.Tensor, log_probs: torch.Tensor, tail: torch.Tensor,
            rule: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Student and teacher over the k ids (``drop``: the student's logits there and the k log-probs, each
    renormalised by the divergence's own softmax) or over the k ids and the tail as one more category
    (``bucket``: log-probabilities at T = 1, the student's tail the ``logsumexp`` of its other logits)."""
    z = student.float()
    ids = ids.long()
    z_top = z.gather(-1, ids)
    if rule == "drop" or ids.shape[-1] >= z.shape[-1]:  # k = V: no tail to keep
        return z_top, log_probs.float()
    lse = torch.logsumexp(z, dim=-1, keepdim=True)
    z_rest = torch.logsumexp(z.scatter(-1, ids, -math.inf), dim=-1, keepdim=True)
    return (torch.cat([z_top, z_rest], dim=-1) - lse,
            torch.cat([log_probs.float(), tail.log().unsqueeze(-1)], dim=-1))


def _divergence(terms: Callable[..., torch.Tensor], student_logits: torch.Tensor,
                teacher: torch.Tensor | TopKTeacher, mask: torch.Tensor | None, chunk_tokens: int,
                temperature: float = 1.0) -> torch.Tensor:
    """The masked mean of ``terms(student, teacher_logits)``; a top-k teacher is made dense (spread) or coarse
    (bucket, drop: :func:`_coarse`) chunk by chunk."""
    if not isinstance(teacher, TopKTeacher):
        return _token_mean(terms, student_logits, mask, chunk_tokens, teacher)
    rule = teacher.tail_rule
    if rule not in TOP_K_TAILS:
        raise ValueError(f"unknown top-k tail rule {rule!r}; known: {', '.join(TOP_K_TAILS)}")
    if rule == "bucket" and temperature != 1:
        raise ValueError(f"a top-k teacher's tail as one bucket needs T = 1 (got {temperature:g}): its log-probs, "
                         "kept at T = 1, cannot be re-tempered; use the exact teacher")

    def dense(student, ids, log_probs, tail):
        return terms(student, top_k_teacher_logits(ids, log_probs, tail, teacher.vocab_size))

    def coarse(student, ids, log_probs, tail):
        return terms(*_coarse(student, ids, log_probs, tail, rule))

    return _token_mean(dense if rule == "spread" else coarse, student_logits, mask, chunk_tokens, teacher.ids,
                       teacher.log_probs, teacher.tail_mass())


def _t2(value: torch.Tensor, temperature: float, scale_t2: bool) -> torch.Tensor:
    return value * temperature**2 if scale_t2 else value


def sparse_forward_kl(student_logits: torch.Tensor, top_ids: torch.Tensor, top_log_probs: torch.Tensor,
                      mask: torch.Tensor | None, vocab_size: int, temperature: float = 1.0, scale_t2: bool = True,
                      tail_mass: torch.Tensor | None = None, chunk_tokens: int = 0) -> torch.Tensor:
    """``T² · KL(p ‖ q)`` against a top-k teacher (:class:`TopKTeacher`), exactly for its flat tail, from
    the (B, T, k) ids and log-probs (at T = 1), the (B, T) tail mass (None: ``1 − Σ_k p``) and the
    student's logits, without a dense (B, T, V) teacher; equal to :func:`forward_kl` on its ``log p̂``."""
    tail = TopKTeacher(top_ids, top_log_probs, vocab_size, tail_mass).tail_mass()
    terms = partial(_sparse_forward_kl_terms, vocab_size=vocab_size, temperature=temperature)
    kl = _token_mean(terms, student_logits, mask, chunk_tokens, top_ids, top_log_probs, tail)
    return _t2(kl, temperature, scale_t2)


def forward_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor | TopKTeacher,
               mask: torch.Tensor | None = None,
               temperature: float = 1.0, scale_t2: bool = True, chunk_tokens: int = 0) -> torch.Tensor:
    """Hinton et al. 2015 (GKD's forward KL, Agarwal et al. 2024): ``T² · KL(p ‖ q)``; ``scale_t2=False`` drops T²."""
    if isinstance(teacher_logits, TopKTeacher) and teacher_logits.tail_rule == "spread":
        t = teacher_logits
        return sparse_forward_kl(student_logits, t.ids, t.log_probs, mask, t.vocab_size, temperature, scale_t2, t.tail,
                                 chunk_tokens)
    kl = _divergence(partial(_forward_kl_terms, temperature=temperature), student_logits, teacher_logits, mask,
                     chunk_tokens, temperature)
    return _t2(kl, temperature, scale_t2)


def reverse_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor | TopKTeacher,
               mask: torch.Tensor | None = None,
               temperature: float = 1.0, scale_t2: bool = True, chunk_tokens: int = 0) -> torch.Tensor:
    """MiniLLM (Gu et al. 2024), mode-seeking: ``T² · KL(q ‖ p)``, T and T² handled as in ``forward_kl``."""
    kl = _divergence(partial(_reverse_kl_terms, temperature=temperature), student_logits, teacher_logits, mask,
                     chunk_tokens, temperature)
    return _t2(kl, temperature, scale_t2)


def jsd(student_logits: torch.Tensor, teacher_logits: torch.Tensor | TopKTeacher, mask: torch.Tensor | None = None,
        temperature: float = 1.0, beta: float = 0.5, chunk_tokens: int = 0) -> torch.Tensor:
    """Generalised Jensen–Shannon, GKD (Agarwal et al. 2024): ``β·KL(p ‖ m) + (1−β)·KL(q ‖ m)``,
    ``m = β·p + (1−β)·q``.

    The mixture form is 0 at both ends (m equals q at β=0 and p at β=1), where it would give no signal;
    as TRL does, β = 0 is the forward ``KL(p ‖ q)`` and β = 1 the reverse ``KL(q ‖ p)`` (no T²), which are
    also the limits of ``jsd(β)/β`` as β → 0 and of ``jsd(β)/(1−β)`` as β → 1. At β=½ it is the JSD, ≤ ln 2.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"mixture weight must lie in [0, 1], got {beta}")
    return _divergence(partial(_jsd_terms, temperature=temperature, beta=beta), student_logits, teacher_logits, mask,
                       chunk_tokens, temperature)


def skew_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor | TopKTeacher, mask: torch.Tensor | None = None,
            temperature: float = 1.0, lam: float = 0.1, chunk_tokens: int = 0) -> torch.Tensor:
    """DistiLLM (Ko et al. 2024) skew KL: ``KL(p ‖ λ·p + (1−λ)·q)``; λ = 0 is the forward KL."""
    return _divergence(partial(_skew_kl_terms, temperature=temperature, lam=lam), student_logits, teacher_logits, mask,
                       chunk_tokens, temperature)


def skew_reverse_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor | TopKTeacher,
                    mask: torch.Tensor | None = None, temperature: float = 1.0, lam: float = 0.1,
                    chunk_tokens: int = 0) -> torch.Tensor:
    """DistiLLM (Ko et al. 2024) skew reverse KL: ``KL(q ‖ (1−λ)·p + λ·q)``; λ = 0 is the reverse KL."""
    return _divergence(partial(_skew_reverse_kl_terms, temperature=temperature, lam=lam), student_logits,
                       teacher_logits, mask, chunk_tokens, temperature)


def tvd(student_logits: torch.Tensor, teacher_logits: torch.Tensor | TopKTeacher, mask: torch.Tensor | None = None,
        temperature: float = 1.0, chunk_tokens: int = 0) -> torch.Tensor:
    """Total variation distance (as used in DistillSpec, Zhou et al. 2024): ``½ · Σ_v |p − q|``, in [0, 1]."""
    return _divergence(partial(_tvd_terms, temperature=temperature), student_logits, teacher_logits, mask, chunk_tokens,
                       temperature)


def logit_mse(student_logits: torch.Tensor, teacher_logits: torch.Tensor | TopKTeacher,
              mask: torch.Tensor | None = None,
              chunk_tokens: int = 0) -> torch.Tensor:
    """Logit matching (Ba & Caruana 2014): ``mean_v (z_s − z_t)²`` per position, no temperature. Without a
    mask, one ``F.mse_loss`` over every element (the same mean: each position has V of them)."""
    if mask is None and not isinstance(teacher_logits, TopKTeacher):
        return F.mse_loss(student_logits.float(), teacher_logits.detach().float())
    return _divergence(_mse_terms, student_logits, teacher_logits, mask, chunk_tokens)


def hidden_state_mse(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]],
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """PKD (Sun et al. 2019) layer matching: mean over pairs of ``MSE(P_i(h_s^i), h_t^j)``, each pair an already
    projected student state and its teacher state. With a (B, T) mask, the states are (B, T, D) token states
    and each pair's MSE is the masked token mean of ``mean_d (P(h_s) − h_t)²``."""
    if mask is None:
        return torch.stack([F.mse_loss(projected, target) for projected, target in pairs]).mean()
    return torch.stack([masked_token_mean(_mse_terms(s, t), mask) for s, t in pairs]).mean()


def attention_map(features: torch.Tensor) -> torch.Tensor:
    """Zagoruyko & Komodakis 2017: ``a(f) = normalize(f.pow(2).mean(channel dim).flatten())``."""
    return F.normalize(features.pow(2).mean(dim=1).flatten(1), dim=1)


def attention_transfer(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Attention transfer: ``Σ_l mean((a(f_s^l) − a(f_t^l))²)`` over paired feature maps."""
    return torch.stack([(attention_map(s) - attention_map(t)).pow(2).mean() for s, t in pairs]).sum()


def attention_kl(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], mask: torch.Tensor,
                 eps: float = 1e-12) -> torch.Tensor:
    """MiniLM (Wang et al. 2020) attention transfer: mean over layer pairs of the masked mean over query
    positions of ``KL(ā_t ‖ ā_s) = Σ_k ā_t (log ā_t − log ā_s)``, with ``ā`` a layer's (B, H, T, T)
    attention probabilities averaged over heads (so teacher and student may have different head counts).
    Positions a causal mask hides are 0 on both sides and add nothing."""
    terms = []
    for student, teacher in pairs:
        a_s, a_t = student.float().mean(dim=1), teacher.detach().float().mean(dim=1)
        per_query = (a_t * (a_t.clamp_min(eps).log() - a_s.clamp_min(eps).log())).sum(dim=-1)
        terms.append(masked_token_mean(per_query, mask))
    return torch.stack(terms).mean()


TOKEN_LOSSES = logit_terms.REGISTERED  # the registered logit terms by name, each with the knobs it reads


def token_divergence(name: str, student_logits: torch.Tensor, teacher_logits: torch.Tensor | TopKTeacher,
                     mask: torch.Tensor | None = None, temperature: float = 1.0, scale_t2: bool = True,
                     beta: float = 0.5, lam: float = 0.1, chunk_tokens: int = 0) -> torch.Tensor:
    """The registered loss ``name``, passed only the knobs it reads (``logit_terms.REGISTERED``; the module notes
    on T²)."""
    if name not in TOKEN_LOSSES:
        raise ValueError(f"unknown token loss {name!r}; known: {', '.join(TOKEN_LOSSES)}")
    knobs = {"temperature": temperature, "scale_t2": scale_t2, "beta": beta, "lam": lam, "chunk_tokens": chunk_tokens}
    return logit_terms.resolve(name)(student_logits, teacher_logits, mask,
                                     **{knob: knobs[knob] for knob in TOKEN_LOSSES[name].knobs})


def with_tail_rule(teacher_logits: torch.Tensor | TopKTeacher, rule: str) -> torch.Tensor | TopKTeacher:
    """A top-k teacher with its tail taken as ``rule`` says (``distill.top_k_tail``); dense logits as they are."""
    return teacher_logits._replace(tail_rule=rule) if isinstance(teacher_logits, TopKTeacher) else teacher_logits


def one_token(student_logits: torch.Tensor, teacher_logits: torch.Tensor | TopKTeacher
              ) -> tuple[torch.Tensor, torch.Tensor | TopKTeacher]:
    """Per-example (B, V) logits (and a top-k teacher's (B, k) entries) as (B, 1, V) views: each example one token."""
    if isinstance(teacher_logits, TopKTeacher):
        teacher = teacher_logits._replace(**{name: getattr(teacher_logits, name)[:, None]
                                             for name in ("ids", "log_probs")},
                                          tail=None if teacher_logits.tail is None else teacher_logits.tail[:, None])
    else:
        teacher = teacher_logits[:, None]
    return student_logits[:, None], teacher


def settings_divergence(settings: DistillSettings, student_logits: torch.Tensor,
                        teacher_logits: torch.Tensor | TopKTeacher, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The term ``settings.logit_loss`` (``logit_terms.build``: registered or a user's, its knobs from the settings:
    T — T² unless ablated —, β, λ, chunk size); a top-k teacher's tail as ``settings.top_k_tail`` says."""
    return logit_terms.build(settings)(student_logits, with_tail_rule(teacher_logits, settings.top_k_tail), mask)


def example_divergence(settings: DistillSettings, student_logits: torch.Tensor,
                       teacher_logits: torch.Tensor | TopKTeacher) -> torch.Tensor:
    """Per-example KD (images): each of the (B, V) logits one token, every one counted (``kl`` is Hinton KD)."""
    return settings_divergence(settings, *one_token(student_logits, teacher_logits))


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy with the targets: the batch mean per example (``mask`` None, logits (B, V)), else, in
    float32, the mean over the mask's target tokens of (B, T, V) logits."""
    if mask is None:
        return F.cross_entropy(logits, targets)
    per_token = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="none")
    return masked_token_mean(per_token.view_as(targets), mask)


def token_top1_matches(logits: torch.Tensor, targets: torch.Tensor,
                       mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token accuracy counts: ``(#unmasked positions where argmax_v logits == target, #unmasked)``.

    ``targets[b, t]`` is the token that ``logits[b, t]`` predicts (already shifted by one).
    """
    mask = mask.bool()
    correct = (logits.argmax(dim=-1) == targets) & mask
    return correct.sum(), mask.sum()


def kl_from_probs(probs: torch.Tensor, student_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``KL(P ‖ q) = Σ_v P log P − P log q`` against a known (B, T, V) distribution ``P`` that may hold
    zeros (``0 log 0 = 0``), e.g. a source's true next-token distribution; masked token mean. A model with more
    rows than ``P`` has ids (padded embedding rows) to which ``P`` gives 0."""
    probs = F.pad(probs.float(), (0, max(0, student_logits.shape[-1] - probs.shape[-1])))
    log_q = torch.log_softmax(student_logits.float(), dim=-1)
    return masked_token_mean((torch.xlogy(probs, probs) - probs * log_q).sum(dim=-1), mask)
