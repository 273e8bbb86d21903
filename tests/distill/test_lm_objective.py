"""The objective per token on real transformers outputs: every strategy, hidden-state and attention terms against
hand computations."""

import math

import numpy as np
import pytest
import torch
from transformers import LlamaConfig

from entrenar_bench.distill import feature_terms, losses
from entrenar_bench.distill.objective import DistillationObjective
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.models.causal_lm import causal_lm, use_eager_attention
from entrenar_bench.tasks.causal_lm import CausalLMTask, next_token_targets

STRATEGIES = {  # conf/distill/*.yaml on the LM experiment's alpha and temperature
    "none": dict(logit_loss="none", alpha=0.0),
    "kd": dict(),
    "mse": dict(logit_loss="mse"),
    "progressive": dict(layer_weight=0.3),
    "attention": dict(attention_weight=0.1),
    "combined": dict(layer_weight=0.3, attention_weight=0.1),
}


def _model(hidden, layers, heads, seed):
    torch.manual_seed(seed)
    model = causal_lm(LlamaConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                                  num_attention_heads=heads, num_key_value_heads=heads), vocab_size=11)
    use_eager_attention(model)
    return model


def test_next_token_targets_line_up_with_the_logits():
    ids = torch.tensor([[5, 6, 7, 8]])
    mask = torch.tensor([[False, False, True, True]])
    targets, target_mask = next_token_targets(ids, mask)
    assert targets[0, :3].tolist() == [6, 7, 8]                 # logits at t predict token t+1
    assert target_mask.tolist() == [[False, True, True, False]]  # ... where token t+1 is a target


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_every_strategy_on_transformers(strategy):
    student, teacher = _model(8, 1, 2, 0), _model(16, 3, 4, 1)  # other widths, depths and head counts
    settings = DistillSettings(**{"name": strategy, "temperature": 1.0, "alpha": 0.5, **STRATEGIES[strategy]})
    task = CausalLMTask(datamodule=None)
    objective = DistillationObjective(settings, feature_terms.build(settings, task, student, teacher))
    ids = torch.randint(0, 11, (3, 7))
    targets, mask = next_token_targets(ids, torch.ones_like(ids, dtype=torch.bool))
    s = task.forward(student, ids, hidden=True, attentions=True)
    with torch.no_grad():
        t = task.forward(teacher, ids, hidden=True, attentions=True)
    terms = objective(s, targets, mask, t)
    expected = {"ce", "loss"} | ({"kd"} if settings.alpha > 0 and settings.logit_loss != "none" else set())
    expected |= {"layers"} if settings.layer_weight else set()
    expected |= {"attention"} if settings.attention_weight else set()
    assert set(terms) == expected and torch.isfinite(terms["loss"])
    if settings.layer_weight:
        assert objective.layers.layer_map == [2]  # the student's one layer to the last
    terms["loss"].backward()
    assert all(p.grad is not None for p in objective.parameters())  # projections train with the student
    assert all(p.grad is None for p in teacher.parameters())


def test_hidden_state_and_attention_terms_against_numpy():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 4))
    mask = np.array([[True, True, False], [True, False, False]])
    expected = ((s - t) ** 2).mean(-1)[mask].mean()
    got = losses.hidden_state_mse([(torch.tensor(s), torch.tensor(t))], torch.tensor(mask))
    assert math.isclose(float(got), expected, rel_tol=1e-6)

    def causal(heads):  # (1, H, 3, 3) rows of attention probabilities, zero above the diagonal
        logits = rng.normal(size=(1, heads, 3, 3)) + np.triu(np.full((3, 3), -np.inf), 1)
        return np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)

    a_s, a_t = causal(2), causal(4)  # different head counts: averaged over heads first
    ms, mt = a_s.mean(1)[0], a_t.mean(1)[0]
    rows = [sum(mt[q, k] * math.log(mt[q, k] / ms[q, k]) for k in range(q + 1)) for q in range(3)]
    got = losses.attention_kl([(torch.tensor(a_s), torch.tensor(a_t))], torch.tensor([[True, True, False]]))
    assert math.isclose(float(got), (rows[0] + rows[1]) / 2, rel_tol=1e-4)


def test_kl_to_a_distribution_with_zeros_against_numpy():
    p = np.array([[[0.5, 0.5, 0.0, 0.0]]])
    z = np.array([[[1.0, 2.0, 0.5, -1.0]]])
    q = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    expected = 0.5 * math.log(0.5 / q[0, 0, 0]) + 0.5 * math.log(0.5 / q[0, 0, 1])
    got = losses.kl_from_probs(torch.tensor(p), torch.tensor(z), torch.tensor([[True]]))
    assert math.isclose(float(got), expected, rel_tol=1e-6)
