"""Each loss term against a value computed independently (numpy, by the formula)."""

import math

import numpy as np
import pytest
import torch

from entrenar_bench.distill import losses
from entrenar_bench.distill.settings import DistillSettings

ZS = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
ZT = torch.tensor([[3.0, 0.0, -2.0], [1.0, -1.0, 0.5]])
Y = torch.tensor([0, 2])


def np_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("t", [1.0, 2.0, 4.0])
def test_hinton_kd_matches_hand_kl_times_t_squared(t):
    p_t = np_softmax(ZT.numpy() / t)
    p_s = np_softmax(ZS.numpy() / t)
    kl = (p_t * (np.log(p_t) - np.log(p_s))).sum(axis=1).mean()
    assert losses.hinton_kd(ZS, ZT, t).item() == pytest.approx(kl * t * t, rel=1e-5)
    assert losses.hinton_kd(ZS, ZT, t, scale_t2=False).item() == pytest.approx(kl, rel=1e-5)


def test_kd_is_zero_when_logits_agree():
    assert losses.hinton_kd(ZT, ZT, 4.0).item() == pytest.approx(0.0, abs=1e-6)


def test_logit_mse_by_hand():
    assert losses.logit_mse(ZS, ZT).item() == pytest.approx(((ZS.numpy() - ZT.numpy()) ** 2).mean(), rel=1e-6)


def test_hidden_state_mse_is_mean_over_pairs():
    a, b = torch.ones(2, 3), torch.zeros(2, 3)  # MSE 1
    c, d = torch.full((2, 4), 3.0), torch.ones(2, 4)  # MSE 4
    assert losses.hidden_state_mse([(a, b), (c, d)]).item() == pytest.approx(2.5)


def test_attention_map_by_hand():
    f = torch.tensor([[[[1.0, 2.0], [0.0, 1.0]], [[3.0, 0.0], [0.0, 1.0]]]])  # (1, C=2, 2, 2)
    raw = np.array([(1 + 9) / 2, (4 + 0) / 2, 0.0, (1 + 1) / 2])  # mean over channels of f^2
    expected = raw / np.linalg.norm(raw)
    assert losses.attention_map(f).numpy()[0] == pytest.approx(expected, rel=1e-6)


def test_attention_transfer_sums_layer_means():
    s1, t1 = torch.rand(2, 3, 4, 4), torch.rand(2, 5, 4, 4)
    s2, t2 = torch.rand(2, 3, 2, 2), torch.rand(2, 6, 2, 2)
    by_hand = sum(
        ((losses.attention_map(s) - losses.attention_map(t)) ** 2).mean().item() for s, t in [(s1, t1), (s2, t2)]
    )
    assert losses.attention_transfer([(s1, t1), (s2, t2)]).item() == pytest.approx(by_hand, rel=1e-6)
