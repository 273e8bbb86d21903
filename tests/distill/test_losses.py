"""Each loss term against a value computed independently (numpy, by the formula)."""

import math

import numpy as np
import pytest
import torch

from entrenar_bench.distill import losses
from entrenar_bench.distill.ablation import apply_ablation, parse_ablate
from entrenar_bench.distill.objective import DistillationObjective, uniform_layer_map
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


def test_uniform_layer_map_spreads_and_ends_on_last():
    assert uniform_layer_map(2, 3) == [1, 2]
    assert uniform_layer_map(3, 2) == [0, 1, 1]
    assert uniform_layer_map(3, 3) == [0, 1, 2]


def _ce(z, y):
    p = np_softmax(z.numpy())
    return -np.log(p[np.arange(len(y)), y.numpy()]).mean()


def test_objective_weights_kd_term():
    s = DistillSettings(logit_loss="kl", temperature=2.0, alpha=0.7)
    terms = DistillationObjective(s)(ZS, Y, ZT)
    kd = losses.hinton_kd(ZS, ZT, 2.0).item()
    assert terms["ce"].item() == pytest.approx(_ce(ZS, Y), rel=1e-5)
    assert terms["loss"].item() == pytest.approx(0.3 * _ce(ZS, Y) + 0.7 * kd, rel=1e-5)


def test_none_strategy_is_plain_cross_entropy():
    s = DistillSettings(name="none", logit_loss="none", alpha=0.0)
    assert not s.needs_teacher
    assert DistillationObjective(s)(ZS, Y)["loss"].item() == pytest.approx(_ce(ZS, Y), rel=1e-5)


def test_combined_objective_adds_weighted_layer_and_attention_terms():
    torch.manual_seed(0)
    s_hidden = [torch.rand(2, 4, 8, 8), torch.rand(2, 8, 4, 4), torch.rand(2, 16)]
    t_hidden = [torch.rand(2, 6, 8, 8), torch.rand(2, 12, 4, 4), torch.rand(2, 32)]
    s = DistillSettings(logit_loss="kl", temperature=4.0, alpha=0.5, layer_weight=0.3, attention_weight=0.1)
    objective = DistillationObjective(s, s_hidden, t_hidden)
    terms = objective(ZS, Y, ZT, s_hidden, t_hidden)
    pairs = [proj(s_hidden[i], t_hidden[j]) for i, (proj, j) in enumerate(zip(objective.projections, objective.layer_map))]
    layers = np.mean([((p - t) ** 2).mean().item() for p, t in pairs])
    attention = sum(((losses.attention_map(a) - losses.attention_map(b)) ** 2).mean().item()
                    for a, b in zip(s_hidden[:2], t_hidden[:2]))
    expected = 0.5 * _ce(ZS, Y) + 0.5 * losses.hinton_kd(ZS, ZT, 4.0).item() + 0.3 * layers + 0.1 * attention
    assert terms["loss"].item() == pytest.approx(expected, rel=1e-5)
    assert sum(p.numel() for p in objective.parameters()) > 0  # projections are trained with the student


def test_attention_needs_feature_maps():
    s = DistillSettings(attention_weight=0.1)
    with pytest.raises(ValueError, match="feature maps"):
        DistillationObjective(s, [torch.rand(2, 16)], [torch.rand(2, 32)])


def test_temperature_ablation_forces_t1_without_t2():
    s = apply_ablation(DistillSettings(temperature=4.0, layer_weight=0.3), parse_ablate("temperature+layer_matching"))
    assert s.effective_temperature == 1.0 and s.layer_weight == 0.0
    terms = DistillationObjective(s)(ZS, Y, ZT)
    assert terms["kd"].item() == pytest.approx(losses.hinton_kd(ZS, ZT, 1.0).item())
    with pytest.raises(ValueError, match="unknown ablation component"):
        parse_ablate("temperature+bogus")
    assert math.isclose(DistillSettings().effective_temperature, 4.0)
