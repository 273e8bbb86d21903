"""Token-level divergences against values computed independently in numpy, by the formulas."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from entrenar_bench.distill import token_losses as tl

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
    return (a * np.log(a / b)).sum(axis=-1)


def np_masked_mean(per_token, mask):
    m = mask.numpy()
    return per_token[m].sum() / m.sum()


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
    return np_masked_mean(per_token, mask)


@pytest.mark.parametrize("name", list(tl.TOKEN_LOSSES))
def test_matches_numpy_by_hand(name):
    loss = tl.token_divergence(name, ZS, ZT, MASK)
    assert loss.dtype == torch.float32 and loss.dim() == 0
    assert loss.item() == pytest.approx(np_reference(name, ZS, ZT, MASK), rel=1e-5)


@pytest.mark.parametrize(("name", "beta", "lam"), [("jsd", 0.1, 0.1), ("jsd", 0.9, 0.1), ("skew_kl", 0.5, 0.3),
                                                   ("skew_reverse_kl", 0.5, 0.7)])
def test_mixture_weights_match_numpy(name, beta, lam):
    loss = tl.token_divergence(name, ZS, ZT, MASK, beta=beta, lam=lam)
    assert loss.item() == pytest.approx(np_reference(name, ZS, ZT, MASK, beta=beta, lam=lam), rel=1e-5)


@pytest.mark.parametrize("name", DIVERGENCES)
@pytest.mark.parametrize("t", [0.5, 2.0, 4.0])
def test_temperature_matches_numpy(name, t):
    loss = tl.token_divergence(name, ZS, ZT, MASK, temperature=t)
    assert loss.item() == pytest.approx(np_reference(name, ZS, ZT, MASK, t=t), rel=1e-5)


@pytest.mark.parametrize("name", ["kl", "reverse_kl"])
def test_t_squared_scaling_applies_to_kl_only_and_can_be_dropped(name):
    scaled = tl.token_divergence(name, ZS, ZT, MASK, temperature=3.0)
    unscaled = tl.token_divergence(name, ZS, ZT, MASK, temperature=3.0, scale_t2=False)
    assert scaled.item() == pytest.approx(9 * unscaled.item(), rel=1e-6)


def test_mse_ignores_temperature():
    assert tl.token_divergence("mse", ZS, ZT, MASK, temperature=5.0).item() == tl.logit_mse(ZS, ZT, MASK).item()


@pytest.mark.parametrize("name", list(tl.TOKEN_LOSSES))
def test_masked_positions_have_no_effect(name):
    zs, zt = ZS.clone(), ZT.clone()
    zs[~MASK] = torch.randn(int((~MASK).sum()), V, generator=GEN) * 10
    zt[~MASK] = torch.randn(int((~MASK).sum()), V, generator=GEN) * 10
    assert tl.token_divergence(name, zs, zt, MASK).item() == tl.token_divergence(name, ZS, ZT, MASK).item()
    int_mask = MASK.long()
    assert tl.token_divergence(name, ZS, ZT, int_mask).item() == tl.token_divergence(name, ZS, ZT, MASK).item()


@pytest.mark.parametrize("name", list(tl.TOKEN_LOSSES))
def test_bf16_inputs_give_float32_close_to_fp32(name):
    loss = tl.token_divergence(name, ZS.bfloat16(), ZT.bfloat16(), MASK)
    assert loss.dtype == torch.float32
    # bf16 keeps 8 bits of mantissa, so the logits themselves move by up to ~0.4%.
    assert loss.item() == pytest.approx(tl.token_divergence(name, ZS, ZT, MASK).item(), rel=3e-2)


@pytest.mark.parametrize("name", list(tl.TOKEN_LOSSES))
def test_nonnegative_and_zero_when_student_equals_teacher(name):
    assert tl.token_divergence(name, ZS, ZT, MASK).item() > 0
    assert tl.token_divergence(name, ZT, ZT, MASK, temperature=2.0).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", list(tl.TOKEN_LOSSES))
def test_no_unmasked_tokens_gives_zero_with_a_graph(name):
    zs = ZS.clone().requires_grad_()
    loss = tl.token_divergence(name, zs, ZT, torch.zeros(B, T, dtype=torch.bool))
    assert loss.item() == 0.0 and loss.dim() == 0
    loss.backward()
    assert torch.equal(zs.grad, torch.zeros_like(zs))


@pytest.mark.parametrize("name", list(tl.TOKEN_LOSSES))
def test_gradient_reaches_student_not_teacher(name):
    zs, zt = ZS.clone().requires_grad_(), ZT.clone().requires_grad_()
    tl.token_divergence(name, zs, zt, MASK).backward()
    assert zt.grad is None
    assert torch.isfinite(zs.grad).all()
    assert zs.grad[MASK].abs().sum() > 0
    assert torch.equal(zs.grad[~MASK], torch.zeros_like(zs.grad[~MASK]))


def test_jsd_endpoints_are_exactly_zero_and_finite():
    for beta in (0.0, 1.0):
        zs = ZS.clone().requires_grad_()
        loss = tl.jsd(zs, ZT, MASK, beta=beta)
        loss.backward()
        assert loss.item() == pytest.approx(0.0, abs=1e-6)
        assert torch.isfinite(zs.grad).all()


@pytest.mark.parametrize(("beta_of", "kl"), [(lambda eps: eps, tl.forward_kl), (lambda eps: 1 - eps, tl.reverse_kl)],
                         ids=["beta_to_0_is_forward_kl", "beta_to_1_is_reverse_kl"])
def test_jsd_endpoint_limits(beta_of, kl):
    """``jsd(β=ε)/ε → KL(p‖q)`` and ``jsd(β=1−ε)/ε → KL(q‖p)``, with an error that shrinks like ε."""
    target = kl(ZS, ZT, MASK).item()
    gaps = [abs(tl.jsd(ZS, ZT, MASK, beta=beta_of(eps)).item() / eps - target) for eps in (1e-2, 1e-3, 1e-4)]
    assert gaps[2] < 1e-3 * target
    assert gaps[0] > 5 * gaps[1] > 25 * gaps[2]


def test_jsd_half_is_bounded_by_ln2():
    far = torch.zeros(1, 1, 2)
    far[0, 0, 0], far[0, 0, 1] = 50.0, -50.0
    assert tl.jsd(far, far.flip(-1), torch.ones(1, 1)).item() == pytest.approx(math.log(2), rel=1e-6)


@pytest.mark.parametrize(("skew", "plain"), [(tl.skew_kl, tl.forward_kl), (tl.skew_reverse_kl, tl.reverse_kl)])
def test_skew_with_lambda_zero_is_plain_kl(skew, plain):
    assert skew(ZS, ZT, MASK, temperature=2.0, lam=0.0).item() == pytest.approx(
        plain(ZS, ZT, MASK, temperature=2.0, scale_t2=False).item(), rel=1e-6)


@pytest.mark.parametrize("skew", [tl.skew_kl, tl.skew_reverse_kl])
def test_skew_with_lambda_one_is_zero(skew):
    assert skew(ZS, ZT, MASK, lam=1.0).item() == pytest.approx(0.0, abs=1e-6)


def test_mixture_weight_outside_unit_interval_is_refused():
    with pytest.raises(ValueError, match="mixture weight"):
        tl.jsd(ZS, ZT, MASK, beta=1.5)


def test_tvd_is_in_unit_interval_and_reaches_one_for_disjoint_supports():
    assert 0 < tl.tvd(ZS, ZT, MASK).item() < 1
    far = torch.tensor([[[50.0, -50.0]]])
    assert tl.tvd(far, far.flip(-1), torch.ones(1, 1)).item() == pytest.approx(1.0, abs=1e-6)


def test_registry_keys():
    assert set(tl.TOKEN_LOSSES) == {"kl", "reverse_kl", "jsd", "skew_kl", "skew_reverse_kl", "tvd", "mse"}


def test_dispatch_passes_the_options_on():
    assert tl.token_divergence("jsd", ZS, ZT, MASK, temperature=2.0, beta=0.2).item() == \
        tl.jsd(ZS, ZT, MASK, temperature=2.0, beta=0.2).item()
    assert tl.token_divergence("skew_kl", ZS, ZT, MASK, lam=0.4).item() == tl.skew_kl(ZS, ZT, MASK, lam=0.4).item()
    assert tl.token_divergence("kl", ZS, ZT, MASK, temperature=2.0, scale_t2=False).item() == \
        tl.forward_kl(ZS, ZT, MASK, temperature=2.0, scale_t2=False).item()


def test_unknown_name_is_a_value_error_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown token loss 'cross_entropy'") as info:
        tl.token_divergence("cross_entropy", ZS, ZT, MASK)
    assert all(name in str(info.value) for name in tl.TOKEN_LOSSES)


def test_top1_matches_count_unmasked_hits():
    targets = ZS.argmax(dim=-1).clone()
    targets[1, 2] = (targets[1, 2] + 1) % V  # one unmasked miss
    targets[0, 2] = (targets[0, 2] + 1) % V  # a masked miss, not counted
    correct, total = tl.token_top1_matches(ZS, targets, MASK)
    assert (correct.item(), total.item()) == (3, 4)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([0.1, 1.0, 10.0, 50.0]),
       t=st.sampled_from([0.5, 1.0, 2.0]), beta=st.floats(0.0, 1.0), lam=st.floats(0.0, 1.0))
def test_every_divergence_is_finite_and_nonnegative(seed, scale, t, beta, lam):
    gen = torch.Generator().manual_seed(seed)
    zs = ((torch.rand(B, T, V, generator=gen) * 2 - 1) * scale).requires_grad_()
    zt = (torch.rand(B, T, V, generator=gen) * 2 - 1) * scale
    for name in tl.TOKEN_LOSSES:
        loss = tl.token_divergence(name, zs, zt, MASK, temperature=t, beta=beta, lam=lam)
        (grad,) = torch.autograd.grad(loss, zs)
        assert torch.isfinite(loss) and loss.item() >= -1e-6, name
        assert torch.isfinite(grad).all(), name
