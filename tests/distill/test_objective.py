"""The one distillation objective: weights of its terms, per example (mask None) and with the feature terms."""

import math

import numpy as np
import pytest
import torch

from entrenar_bench.distill import losses
from entrenar_bench.distill.features import MapAttentionTransfer, MapLayerMatching, uniform_layer_map
from entrenar_bench.distill.objective import DistillationObjective, ModelOutputs
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.run.ablation import apply_ablation, parse_ablate

ZS = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
ZT = torch.tensor([[3.0, 0.0, -2.0], [1.0, -1.0, 0.5]])
Y = torch.tensor([0, 2])


def np_softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_uniform_layer_map_spreads_and_ends_on_last():
    assert uniform_layer_map(2, 3) == [1, 2]
    assert uniform_layer_map(3, 2) == [0, 1, 1]
    assert uniform_layer_map(3, 3) == [0, 1, 2]


def _ce(z, y):
    p = np_softmax(z.numpy())
    return -np.log(p[np.arange(len(y)), y.numpy()]).mean()


def test_objective_weights_kd_term():
    s = DistillSettings(logit_loss="kl", temperature=2.0, alpha=0.7)
    terms = DistillationObjective(s)(ModelOutputs(ZS), Y, None, ModelOutputs(ZT))
    kd = losses.forward_kl(ZS[:, None], ZT[:, None], temperature=2.0).item()
    assert terms["ce"].item() == pytest.approx(_ce(ZS, Y), rel=1e-5)
    assert terms["loss"].item() == pytest.approx(0.3 * _ce(ZS, Y) + 0.7 * kd, rel=1e-5)


def test_none_strategy_is_plain_cross_entropy():
    s = DistillSettings(name="none", logit_loss="none", alpha=0.0)
    assert not s.needs_teacher
    assert DistillationObjective(s)(ModelOutputs(ZS), Y, None)["loss"].item() == pytest.approx(_ce(ZS, Y), rel=1e-5)


def test_combined_objective_adds_weighted_layer_and_attention_terms():
    torch.manual_seed(0)
    s_hidden = [torch.rand(2, 4, 8, 8), torch.rand(2, 8, 4, 4), torch.rand(2, 16)]
    t_hidden = [torch.rand(2, 6, 8, 8), torch.rand(2, 12, 4, 4), torch.rand(2, 32)]
    s = DistillSettings(logit_loss="kl", temperature=4.0, alpha=0.5, layer_weight=0.3, attention_weight=0.1)
    objective = DistillationObjective(s, [("layers", 0.3, MapLayerMatching(s_hidden, t_hidden)),
                                          ("attention", 0.1, MapAttentionTransfer(s_hidden, t_hidden))])
    terms = objective(ModelOutputs(ZS, s_hidden), Y, None, ModelOutputs(ZT, t_hidden))
    layers = objective.layers
    pairs = [proj(s_hidden[i], t_hidden[j]) for i, (proj, j) in enumerate(zip(layers.projections, layers.layer_map))]
    layers = np.mean([((p - t) ** 2).mean().item() for p, t in pairs])
    attention = sum(((losses.attention_map(a) - losses.attention_map(b)) ** 2).mean().item()
                    for a, b in zip(s_hidden[:2], t_hidden[:2]))
    kd = losses.forward_kl(ZS[:, None], ZT[:, None], temperature=4.0).item()
    expected = 0.5 * _ce(ZS, Y) + 0.5 * kd + 0.3 * layers + 0.1 * attention
    assert terms["loss"].item() == pytest.approx(expected, rel=1e-5)
    assert sum(p.numel() for p in objective.parameters()) > 0  # projections are trained with the student


def test_attention_needs_feature_maps():
    with pytest.raises(ValueError, match="feature maps"):
        MapAttentionTransfer([torch.rand(2, 16)], [torch.rand(2, 32)])


def test_temperature_ablation_forces_t1_without_t2():
    s = apply_ablation(DistillSettings(temperature=4.0, layer_weight=0.3), parse_ablate("temperature+layer_matching"))
    assert s.effective_temperature == 1.0 and s.layer_weight == 0.0
    terms = DistillationObjective(s)(ModelOutputs(ZS), Y, None, ModelOutputs(ZT))
    assert terms["kd"].item() == pytest.approx(losses.forward_kl(ZS[:, None], ZT[:, None], temperature=1.0).item())
    with pytest.raises(ValueError, match="unknown ablation component"):
        parse_ablate("temperature+bogus")
    assert math.isclose(DistillSettings().effective_temperature, 4.0)
