"""Every loss term of ``losses.py`` against a value computed independently (numpy/scipy in float64, by the
formula); the −inf and ±50 numerics; chunked against whole; the top-k teacher against its dense form; and the
image objective built from them."""

import math
import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import rel_entr

from entrenar_bench.distill import losses as L
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.errors import ConfigError
from entrenar_bench.run.checks import validate_config

B, T, V = 2, 3, 5
GEN = torch.Generator().manual_seed(0)
ZS = torch.randn(B, T, V, generator=GEN) * 2
ZT = torch.randn(B, T, V, generator=GEN) * 2
MASK = torch.tensor([[True, True, False], [False, True, True]])
DIVERGENCES = ["kl", "reverse_kl", "jsd", "skew_kl", "skew_reverse_kl", "tvd"]


def np_probs(z, t=1.0):
    z = z.numpy().astype(np.float64) / t
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_kl(a, b):
    """``Σ a log(a/b)`` with scipy's conventions: 0 where a = 0, +inf where a > 0 = b."""
    return rel_entr(a, b).sum(axis=-1)


def np_reference(name, zs, zt, mask, t=1.0, beta=0.5, lam=0.1):
    """The loss by hand: p teacher, q student, per token over V, mean over the True positions."""
    p, q = np_probs(zt, t), np_probs(zs, t)
    per_token = {
        "kl": lambda: np_kl(p, q) * t * t,
        "reverse_kl": lambda: np_kl(q, p) * t * t,
        "jsd": lambda: beta * np_kl(p, beta * p + (1 - beta) * q) + (1 - beta) * np_kl(q, beta * p + (1 - beta) * q),
        "skew_kl": lambda: np_kl(p, lam * p + (1 - lam) * q),
        "skew_reverse_kl": lambda: np_kl(q, (1 - lam) * p + lam * q),
        "tvd": lambda: 0.5 * np.abs(p - q).sum(axis=-1),
        "mse": lambda: ((zs.numpy().astype(np.float64) - zt.numpy()) ** 2).mean(axis=-1),
    }[name]()
    m = mask.numpy()
    return per_token[m].sum() / m.sum()


# --- the formulas -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(L.TOKEN_LOSSES))
def test_matches_numpy_by_hand(name):
    loss = L.token_divergence(name, ZS, ZT, MASK)
    assert loss.dtype == torch.float32 and loss.dim() == 0
    assert loss.item() == pytest.approx(np_reference(name, ZS, ZT, MASK), rel=1e-5)


@pytest.mark.parametrize(("name", "beta", "lam"), [("jsd", 0.1, 0.1), ("jsd", 0.9, 0.1), ("skew_kl", 0.5, 0.3),
                                                   ("skew_reverse_kl", 0.5, 0.7)])
def test_mixture_weights_match_numpy(name, beta, lam):
    loss = L.token_divergence(name, ZS, ZT, MASK, beta=beta, lam=lam)
    assert loss.item() == pytest.approx(np_reference(name, ZS, ZT, MASK, beta=beta, lam=lam), rel=1e-5)


@pytest.mark.parametrize("name", DIVERGENCES)
@pytest.mark.parametrize("t", [0.5, 2.0, 4.0])
def test_temperature_matches_numpy(name, t):
    loss = L.token_divergence(name, ZS, ZT, MASK, temperature=t)
    assert loss.item() == pytest.approx(np_reference(name, ZS, ZT, MASK, t=t), rel=1e-5)


@pytest.mark.parametrize("name", ["kl", "reverse_kl"])
def test_t_squared_scaling_applies_to_kl_only_and_can_be_dropped(name):
    scaled = L.token_divergence(name, ZS, ZT, MASK, temperature=3.0)
    unscaled = L.token_divergence(name, ZS, ZT, MASK, temperature=3.0, scale_t2=False)
    assert scaled.item() == pytest.approx(9 * unscaled.item(), rel=1e-6)


def test_mse_ignores_temperature():
    assert L.token_divergence("mse", ZS, ZT, MASK, temperature=5.0).item() == L.logit_mse(ZS, ZT, MASK).item()


@pytest.mark.parametrize("name", list(L.TOKEN_LOSSES))
def test_masked_positions_have_no_effect(name):
    zs, zt = ZS.clone(), ZT.clone()
    zs[~MASK] = torch.randn(int((~MASK).sum()), V, generator=GEN) * 10
    zt[~MASK] = torch.randn(int((~MASK).sum()), V, generator=GEN) * 10
    assert L.token_divergence(name, zs, zt, MASK).item() == L.token_divergence(name, ZS, ZT, MASK).item()
    assert L.token_divergence(name, ZS, ZT, MASK.long()).item() == L.token_divergence(name, ZS, ZT, MASK).item()


@pytest.mark.parametrize("name", list(L.TOKEN_LOSSES))
def test_no_mask_counts_every_position(name):
    every = torch.ones(B, T, dtype=torch.bool)
    assert L.token_divergence(name, ZS, ZT).item() == pytest.approx(L.token_divergence(name, ZS, ZT, every).item(),
                                                                     rel=1e-6)


@pytest.mark.parametrize("name", list(L.TOKEN_LOSSES))
def test_bf16_inputs_give_float32_close_to_fp32(name):
    loss = L.token_divergence(name, ZS.bfloat16(), ZT.bfloat16(), MASK)
    assert loss.dtype == torch.float32
    # bf16 keeps 8 bits of mantissa, so the logits themselves move by up to ~0.4%.
    assert loss.item() == pytest.approx(L.token_divergence(name, ZS, ZT, MASK).item(), rel=3e-2)


@pytest.mark.parametrize("name", list(L.TOKEN_LOSSES))
def test_nonnegative_and_zero_when_student_equals_teacher(name):
    assert L.token_divergence(name, ZS, ZT, MASK).item() > 0
    assert L.token_divergence(name, ZT, ZT, MASK, temperature=2.0).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("chunk", [0, 2])
@pytest.mark.parametrize("name", list(L.TOKEN_LOSSES))
def test_no_unmasked_tokens_gives_zero_with_a_graph(name, chunk):
    zs = ZS.clone().requires_grad_()
    loss = L.token_divergence(name, zs, ZT, torch.zeros(B, T, dtype=torch.bool), chunk_tokens=chunk)
    assert loss.item() == 0.0 and loss.dim() == 0
    loss.backward()
    assert torch.equal(zs.grad, torch.zeros_like(zs))


@pytest.mark.parametrize("chunk", [0, 2])
@pytest.mark.parametrize("name", list(L.TOKEN_LOSSES))
def test_gradient_reaches_student_not_teacher(name, chunk):
    zs, zt = ZS.clone().requires_grad_(), ZT.clone().requires_grad_()
    L.token_divergence(name, zs, zt, MASK, chunk_tokens=chunk).backward()
    assert zt.grad is None
    assert torch.isfinite(zs.grad).all()
    assert zs.grad[MASK].abs().sum() > 0
    assert torch.equal(zs.grad[~MASK], torch.zeros_like(zs.grad[~MASK]))


@pytest.mark.parametrize(("beta", "kl"), [(0.0, L.forward_kl), (1.0, L.reverse_kl)],
                         ids=["beta_0_is_forward_kl", "beta_1_is_reverse_kl"])
def test_jsd_endpoints_are_forward_and_reverse_kl_as_in_trl(beta, kl):
    """TRL's convention (the mixture form alone is 0 there: no signal, ms-swift #10078): no T²."""
    zs = ZS.clone().requires_grad_()
    loss = L.jsd(zs, ZT, MASK, temperature=2.0, beta=beta)
    assert loss.item() == kl(ZS, ZT, MASK, temperature=2.0, scale_t2=False).item() > 0.01
    loss.backward()
    assert torch.isfinite(zs.grad).all() and zs.grad.abs().sum() > 0


@pytest.mark.parametrize(("beta_of", "kl"), [(lambda eps: eps, L.forward_kl), (lambda eps: 1 - eps, L.reverse_kl)],
                         ids=["beta_to_0_is_forward_kl", "beta_to_1_is_reverse_kl"])
def test_jsd_endpoint_limits(beta_of, kl):
    """``jsd(β=ε)/ε → KL(p‖q)`` and ``jsd(β=1−ε)/ε → KL(q‖p)``, with an error that shrinks like ε: the
    endpoints' values are these limits."""
    target = kl(ZS, ZT, MASK).item()
    gaps = [abs(L.jsd(ZS, ZT, MASK, beta=beta_of(eps)).item() / eps - target) for eps in (1e-2, 1e-3, 1e-4)]
    assert gaps[2] < 1e-3 * target
    assert gaps[0] > 5 * gaps[1] > 25 * gaps[2]


def test_jsd_half_is_bounded_by_ln2():
    far = torch.zeros(1, 1, 2)
    far[0, 0, 0], far[0, 0, 1] = 50.0, -50.0
    assert L.jsd(far, far.flip(-1), torch.ones(1, 1)).item() == pytest.approx(math.log(2), rel=1e-6)


@pytest.mark.parametrize(("skew", "plain"), [(L.skew_kl, L.forward_kl), (L.skew_reverse_kl, L.reverse_kl)])
def test_skew_with_lambda_zero_is_plain_kl(skew, plain):
    assert skew(ZS, ZT, MASK, temperature=2.0, lam=0.0).item() == pytest.approx(
        plain(ZS, ZT, MASK, temperature=2.0, scale_t2=False).item(), rel=1e-6)


@pytest.mark.parametrize("skew", [L.skew_kl, L.skew_reverse_kl])
def test_skew_with_lambda_one_is_zero(skew):
    assert skew(ZS, ZT, MASK, lam=1.0).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(("divergence", "option"), [(L.jsd, {"beta": 1.5}), (L.skew_kl, {"lam": -0.1})])
def test_mixture_weight_outside_unit_interval_is_refused(divergence, option):
    with pytest.raises(ValueError, match="mixture weight"):
        divergence(ZS, ZT, MASK, **option)


def test_tvd_is_in_unit_interval_and_reaches_one_for_disjoint_supports():
    assert 0 < L.tvd(ZS, ZT, MASK).item() < 1
    far = torch.tensor([[[50.0, -50.0]]])
    assert L.tvd(far, far.flip(-1), torch.ones(1, 1)).item() == pytest.approx(1.0, abs=1e-6)


def test_registry_keys():
    assert set(L.TOKEN_LOSSES) == {"kl", "reverse_kl", "jsd", "skew_kl", "skew_reverse_kl", "tvd", "mse"}


def test_dispatch_passes_the_options_on():
    assert L.token_divergence("jsd", ZS, ZT, MASK, temperature=2.0, beta=0.2).item() == \
        L.jsd(ZS, ZT, MASK, temperature=2.0, beta=0.2).item()
    assert L.token_divergence("skew_kl", ZS, ZT, MASK, lam=0.4).item() == L.skew_kl(ZS, ZT, MASK, lam=0.4).item()
    assert L.token_divergence("kl", ZS, ZT, MASK, temperature=2.0, scale_t2=False).item() == \
        L.forward_kl(ZS, ZT, MASK, temperature=2.0, scale_t2=False).item()
    settings_ = DistillSettings(logit_loss="skew_reverse_kl", temperature=3.0, skew_lambda=0.3, loss_chunk_tokens=2)
    assert L.settings_divergence(settings_, ZS, ZT, MASK).item() == pytest.approx(
        L.skew_reverse_kl(ZS, ZT, MASK, temperature=3.0, lam=0.3).item(), rel=1e-6)


def test_unknown_name_is_a_value_error_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown token loss 'cross_entropy'") as info:
        L.token_divergence("cross_entropy", ZS, ZT, MASK)
    assert all(name in str(info.value) for name in L.TOKEN_LOSSES)


def test_top1_matches_count_unmasked_hits():
    targets = ZS.argmax(dim=-1).clone()
    targets[1, 2] = (targets[1, 2] + 1) % V  # one unmasked miss
    targets[0, 2] = (targets[0, 2] + 1) % V  # a masked miss, not counted
    correct, total = L.token_top1_matches(ZS, targets, MASK)
    assert (correct.item(), total.item()) == (3, 4)


def test_masked_token_mean_by_hand():
    values = torch.tensor([[1.0, 2.0, 100.0], [100.0, 3.0, 6.0]])
    assert L.masked_token_mean(values, MASK).item() == pytest.approx(3.0)
    assert L.masked_token_mean(values).item() == pytest.approx(212 / 6)


# --- numerics: -inf logits (a masked vocabulary) and ±50 logits ----------------------------------------------

def _with_inf(z, columns):
    z = z.clone()
    z[..., columns] = -math.inf
    return z


SIDES = {  # which side's logits hold -inf, at which vocabulary entries
    "both": dict(student=[1, 3], teacher=[1, 3]),
    "teacher": dict(student=[], teacher=[0, 4]),
    "student": dict(student=[2], teacher=[]),
}


@pytest.mark.parametrize("t", [1.0, 2.0])
@pytest.mark.parametrize("side", list(SIDES))
@pytest.mark.parametrize("name", DIVERGENCES)
def test_minus_inf_logits_follow_kl_div_convention_equal_to_float64(name, side, t):
    """0·log 0 = 0: finite wherever the divergence is (every one on a vocabulary masked on both sides); a KL
    whose first argument has mass where the second has none is +inf (scipy's reference too), never NaN."""
    zs, zt = _with_inf(ZS, SIDES[side]["student"]), _with_inf(ZT, SIDES[side]["teacher"])
    reference = np_reference(name, zs, zt, MASK, t=t)
    if side == "both":
        assert math.isfinite(reference)
    for chunk in (0, 2):
        student = zs.clone().requires_grad_()
        loss = L.token_divergence(name, student, zt, MASK, temperature=t, chunk_tokens=chunk)
        assert not loss.isnan()
        assert loss.item() == pytest.approx(reference, rel=1e-5)
        if math.isfinite(reference):
            loss.backward()
            assert torch.isfinite(student.grad).all()
            masked = torch.isinf(zs)
            assert torch.equal(student.grad[masked], torch.zeros_like(student.grad[masked]))


def test_kl_div_agrees_on_a_vocabulary_masked_on_both_sides():
    zs, zt = _with_inf(ZS, [1, 3]), _with_inf(ZT, [1, 3])
    keep = [0, 2, 4]  # kl_div itself gives 0·(−inf) = NaN where both are masked: compare on the rest
    expected = F.kl_div(torch.log_softmax(zs[..., keep], -1), torch.softmax(zt[..., keep], -1), reduction="none")
    assert L.forward_kl(zs, zt, MASK).item() == pytest.approx(expected.sum(-1)[MASK].mean().item(), rel=1e-6)


@pytest.mark.parametrize("name", list(L.TOKEN_LOSSES))
def test_plus_minus_50_logits_are_finite_and_match_float64(name):
    zs = torch.tensor([[[50.0, -50.0, 0.0, -50.0], [-50.0, 50.0, 50.0, -50.0]]])
    zt = torch.tensor([[[-50.0, 50.0, -50.0, 0.0], [50.0, -50.0, 50.0, -50.0]]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    student = zs.clone().requires_grad_()
    loss = L.token_divergence(name, student, zt, mask)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(student.grad).all()
    assert loss.item() == pytest.approx(np_reference(name, zs, zt, mask), rel=1e-4)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([0.1, 1.0, 10.0, 50.0]),
       t=st.sampled_from([0.5, 1.0, 2.0]), beta=st.floats(0.0, 1.0), lam=st.floats(0.0, 1.0))
def test_every_divergence_is_finite_and_nonnegative(seed, scale, t, beta, lam):
    gen = torch.Generator().manual_seed(seed)
    zs = ((torch.rand(B, T, V, generator=gen) * 2 - 1) * scale).requires_grad_()
    zt = (torch.rand(B, T, V, generator=gen) * 2 - 1) * scale
    for name in L.TOKEN_LOSSES:
        loss = L.token_divergence(name, zs, zt, MASK, temperature=t, beta=beta, lam=lam)
        (grad,) = torch.autograd.grad(loss, zs)
        assert torch.isfinite(loss) and loss.item() >= -1e-6, name
        assert torch.isfinite(grad).all(), name


# --- chunked over positions: the same values and gradients, bounded memory -----------------------------------

CB, CT, CV = 3, 7, 11  # 21 positions: chunks of 4 leave a short last one
CGEN = torch.Generator().manual_seed(1)
CZS = torch.randn(CB, CT, CV, generator=CGEN) * 3
CZT = torch.randn(CB, CT, CV, generator=CGEN) * 3
CMASK = torch.rand(CB, CT, generator=CGEN) > 0.3


def _value_and_grad(name, zs, teacher, mask, chunk, **options):
    student = zs.clone().requires_grad_()
    loss = L.token_divergence(name, student, teacher, mask, chunk_tokens=chunk, **options)
    (0.7 * loss).backward()
    return loss.detach(), student.grad


@pytest.mark.parametrize("chunk", [1, 4, 20])
@pytest.mark.parametrize("name", list(L.TOKEN_LOSSES))
def test_chunked_equals_whole_in_value_and_gradient(name, chunk):
    options = dict(temperature=2.0, beta=0.3, lam=0.2)
    whole = _value_and_grad(name, CZS, CZT, CMASK, 10_000, **options)
    chunked = _value_and_grad(name, CZS, CZT, CMASK, chunk, **options)
    torch.testing.assert_close(chunked[0], whole[0])
    torch.testing.assert_close(chunked[1], whole[1])
    with torch.no_grad():  # evaluation: no gradient buffer, the same value
        torch.testing.assert_close(L.token_divergence(name, CZS, CZT, CMASK, chunk_tokens=chunk, **options), whole[0])


@pytest.mark.parametrize("name", ["kl", "jsd"])
def test_chunked_bf16_logits_get_a_bf16_gradient_close_to_the_whole(name):
    whole = _value_and_grad(name, CZS.bfloat16(), CZT.bfloat16(), None, 10_000)
    chunked = _value_and_grad(name, CZS.bfloat16(), CZT.bfloat16(), None, 4)
    assert chunked[1].dtype == torch.bfloat16
    torch.testing.assert_close(chunked[0], whole[0])
    torch.testing.assert_close(chunked[1], whole[1])


def test_automatic_chunk_leaves_small_vocabularies_whole():
    """The embedded tasks (V = 32 and 64, at most 64,000 positions a batch) are computed in one piece."""
    assert L.chunk_positions(0, 32) > 100_000 and L.chunk_positions(0, 64) > 64_000
    assert L.chunk_positions(0, 49152) == L.AUTO_CHUNK_ELEMENTS // 49152 and L.chunk_positions(7, 49152) == 7
    small = L.tvd(ZS.clone().requires_grad_(), ZT, MASK)
    assert "Chunked" not in type(small.grad_fn).__name__
    chunked = L.tvd(ZS.clone().requires_grad_(), ZT, MASK, chunk_tokens=2)
    assert "Chunked" in type(chunked.grad_fn).__name__


def _saved_bytes_held(name, chunk):
    """Bytes of the tensors the divergence's graph holds for the backward pass, the inputs aside."""
    student = CZS.repeat(8, 1, 1).requires_grad_()
    held = []

    def pack(tensor):
        held.append(weakref.ref(tensor))
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = L.token_divergence(name, student, CZT.repeat(8, 1, 1), None, chunk_tokens=chunk)
    alive = {id(t): t for t in (ref() for ref in held) if t is not None and t.data_ptr() != student.data_ptr()}
    del loss
    return sum(t.numel() * t.element_size() for t in alive.values()), student.numel() * student.element_size()


@pytest.mark.parametrize("name", DIVERGENCES)
def test_chunked_graph_holds_one_gradient_not_several_logit_copies(name):
    whole, logits = _saved_bytes_held(name, 10_000)
    chunked, _ = _saved_bytes_held(name, 8)
    assert whole >= 2 * logits
    assert chunked <= logits


# --- a top-k teacher: sparse forward KL, the others from its dense form ---------------------------------------

class _Reference:
    """The dense top-k distribution built by hand: the k largest log-probabilities at their ids, the rest of the
    mass spread evenly over the other V − k tokens."""

    def __init__(self, logits, k):
        self.values, self.ids = torch.log_softmax(logits.float(), dim=-1).topk(k, dim=-1)
        tail = (1 - self.values.exp().sum(-1, keepdim=True)).clamp_min(1e-30) / max(logits.shape[-1] - k, 1)
        self.dense = tail.log().expand(*self.values.shape[:-1], logits.shape[-1]).clone().scatter_(-1, self.ids,
                                                                                                  self.values)

    def logits(self, index):
        return self.dense[index]


def _top_k(logits, k, dtype=torch.float32):
    top = _Reference(logits, k)
    return L.TopKTeacher(top.ids.to(torch.int32), top.values.to(dtype), logits.shape[-1]), top


@pytest.mark.parametrize("t", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("k", [1, 4, CV])
def test_sparse_forward_kl_equals_the_dense_reconstruction(k, t):
    teacher, stored = _top_k(CZT, k)
    dense = stored.logits(torch.arange(CB))  # today's (B, T, V) reconstruction of the same distribution
    torch.testing.assert_close(teacher.logits(), dense, rtol=0, atol=0)
    whole = _value_and_grad("kl", CZS, dense, CMASK, 0, temperature=t)
    for chunk in (0, 4):
        student = CZS.clone().requires_grad_()
        loss = L.sparse_forward_kl(student, teacher.ids, teacher.log_probs, CMASK, CV, temperature=t, scale_t2=True,
                                   chunk_tokens=chunk)
        (0.7 * loss).backward()
        torch.testing.assert_close(loss.detach(), whole[0])
        torch.testing.assert_close(student.grad, whole[1])


def test_sparse_forward_kl_takes_a_stored_tail_and_16_bit_log_probs():
    teacher, _ = _top_k(CZT, 3, torch.bfloat16)
    tail = 1 - teacher.log_probs.float().exp().sum(-1)
    dense = L.top_k_teacher_logits(teacher.ids, teacher.log_probs, tail, CV)
    expected = L.forward_kl(CZS, dense, CMASK, temperature=2.0)
    assert L.forward_kl(CZS, teacher._replace(tail=tail), CMASK, temperature=2.0).item() == pytest.approx(
        expected.item(), rel=1e-5)
    stored_tail = tail + 0.01  # a tail stored apart (more exact than 1 − Σ of 16-bit values) is the one used
    moved = L.forward_kl(CZS, teacher._replace(tail=stored_tail), CMASK, temperature=2.0)
    dense_moved = L.forward_kl(CZS, L.top_k_teacher_logits(teacher.ids, teacher.log_probs, stored_tail, CV), CMASK,
                               temperature=2.0)
    assert (moved.item() == pytest.approx(dense_moved.item(), rel=1e-5)
            and moved.item() != pytest.approx(expected.item()))


@pytest.mark.parametrize("name", list(L.TOKEN_LOSSES))
def test_every_divergence_takes_a_top_k_teacher(name):
    teacher, stored = _top_k(CZT, 4)
    dense = stored.logits(torch.arange(CB))
    whole = _value_and_grad(name, CZS, dense, CMASK, 0, temperature=2.0)
    for chunk in (0, 5):
        got = _value_and_grad(name, CZS, teacher, CMASK, chunk, temperature=2.0)
        torch.testing.assert_close(got[0], whole[0])
        torch.testing.assert_close(got[1], whole[1])


def test_sparse_forward_kl_at_a_real_vocabulary_size():
    gen = torch.Generator().manual_seed(2)
    zs, zt = torch.randn(2, 3, 4096, generator=gen) * 4, torch.randn(2, 3, 4096, generator=gen) * 4
    teacher, stored = _top_k(zt, 64)
    expected = L.forward_kl(zs, stored.logits(torch.arange(2)), temperature=2.0)
    assert L.forward_kl(zs, teacher, temperature=2.0).item() == pytest.approx(expected.item(), rel=1e-4)


# --- per-example (image) losses -----------------------------------------------------------------------------

ZS2 = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
ZT2 = torch.tensor([[3.0, 0.0, -2.0], [1.0, -1.0, 0.5]])
Y = torch.tensor([0, 2])


def hinton_kl_div(zs, zt, t, scale_t2=True):
    """The form DESIGN.md gives: ``T²·F.kl_div(log_softmax(z_s/T), softmax(z_t/T), reduction="batchmean")``."""
    kl = F.kl_div(F.log_softmax(zs / t, dim=-1), F.softmax(zt / t, dim=-1), reduction="batchmean")
    return kl * t**2 if scale_t2 else kl


def kd(zs, zt, t, scale_t2=True):
    return L.example_divergence(DistillSettings(temperature=t, temperature_scaling=scale_t2), zs, zt)


def np_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("t", [1.0, 2.0, 4.0])
def test_hinton_kd_is_the_one_token_kl_matching_hand_kl_times_t_squared(t):
    p_t = np_softmax(ZT2.numpy() / t)
    p_s = np_softmax(ZS2.numpy() / t)
    kl = (p_t * (np.log(p_t) - np.log(p_s))).sum(axis=1).mean()
    assert kd(ZS2, ZT2, t).item() == pytest.approx(kl * t * t, rel=1e-5)
    assert L.forward_kl(ZS2[:, None], ZT2[:, None], temperature=t, scale_t2=False).item() == pytest.approx(kl, rel=1e-5)


@pytest.mark.parametrize(("t", "scale_t2"), [(4.0, True), (1.0, False), (2.0, True)])
def test_one_token_kl_has_the_kl_div_form_gradients(t, scale_t2):
    """The per-example KD is the token KL on one token: Hinton's kl_div form, gradients equal up to rounding
    (p is exp(log p) here, softmax there); logit MSE without a mask is F.mse_loss, gradients to the bit."""
    zs, zt = torch.randn(64, 10, generator=GEN) * 3, torch.randn(64, 10, generator=GEN) * 3
    ours, theirs = zs.clone().requires_grad_(), zs.clone().requires_grad_()
    (0.7 * kd(ours, zt, t, scale_t2)).backward()
    (0.7 * hinton_kl_div(theirs, zt, t, scale_t2)).backward()
    torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-5, atol=1e-7)
    ours, theirs = zs.clone().requires_grad_(), zs.clone().requires_grad_()
    (0.7 * L.example_divergence(DistillSettings(logit_loss="mse"), ours, zt)).backward()
    (0.7 * F.mse_loss(theirs, zt)).backward()
    assert torch.equal(ours.grad, theirs.grad)


def test_kd_is_zero_when_logits_agree():
    assert kd(ZT2, ZT2, 4.0).item() == pytest.approx(0.0, abs=1e-6)


def test_logit_mse_by_hand():
    assert L.logit_mse(ZS2, ZT2).item() == pytest.approx(((ZS2.numpy() - ZT2.numpy()) ** 2).mean(), rel=1e-6)


def test_hidden_state_mse_is_mean_over_pairs():
    a, b = torch.ones(2, 3), torch.zeros(2, 3)  # MSE 1
    c, d = torch.full((2, 4), 3.0), torch.ones(2, 4)  # MSE 4
    assert L.hidden_state_mse([(a, b), (c, d)]).item() == pytest.approx(2.5)


def test_hidden_state_mse_with_a_mask_is_the_masked_token_mean():
    s, t = torch.zeros(1, 3, 2), torch.tensor([[[1.0, 1.0], [2.0, 2.0], [9.0, 9.0]]])
    assert L.hidden_state_mse([(s, t)], torch.tensor([[True, True, False]])).item() == pytest.approx(2.5)


def test_attention_map_by_hand():
    f = torch.tensor([[[[1.0, 2.0], [0.0, 1.0]], [[3.0, 0.0], [0.0, 1.0]]]])  # (1, C=2, 2, 2)
    raw = np.array([(1 + 9) / 2, (4 + 0) / 2, 0.0, (1 + 1) / 2])  # mean over channels of f^2
    expected = raw / np.linalg.norm(raw)
    assert L.attention_map(f).numpy()[0] == pytest.approx(expected, rel=1e-6)


def test_attention_transfer_sums_layer_means():
    s1, t1 = torch.rand(2, 3, 4, 4), torch.rand(2, 5, 4, 4)
    s2, t2 = torch.rand(2, 3, 2, 2), torch.rand(2, 6, 2, 2)
    by_hand = sum(((L.attention_map(s) - L.attention_map(t)) ** 2).mean().item() for s, t in [(s1, t1), (s2, t2)])
    assert L.attention_transfer([(s1, t1), (s2, t2)]).item() == pytest.approx(by_hand, rel=1e-6)


def test_the_chunk_setting_is_checked_before_a_run(compose_cfg):
    validate_config(compose_cfg("distill.loss_chunk_tokens=256"))
    with pytest.raises(ConfigError, match="distill.loss_chunk_tokens must be >= 0"):
        validate_config(compose_cfg("distill.loss_chunk_tokens=-1"))
