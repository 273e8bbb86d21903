"""An on-policy batch keeps the objective's weights (GKD's λ changes only where the divergence is measured):
(1−α)·CE on the batch's real tokens + α·D on the student's own continuations; were the student's samples the
real tokens, the loss would be that of an ordinary batch."""

from types import SimpleNamespace

import pytest
import torch
from transformers import LlamaConfig

from entrenar_bench.distill import losses
from entrenar_bench.distill.module import DistillationModule
from entrenar_bench.distill.objective import DistillationObjective
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.models.causal_lm import causal_lm
from entrenar_bench.tasks.causal_lm import CausalLMTask

VOCAB = 11


def _model(hidden, seed):
    torch.manual_seed(seed)
    return causal_lm(LlamaConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=2), vocab_size=VOCAB)


def _module(on_policy, alpha, logit_loss="kl"):
    settings = DistillSettings(on_policy=on_policy, alpha=alpha, temperature=2.0, logit_loss=logit_loss,
                               prompt_tokens=3)
    return DistillationModule(CausalLMTask(SimpleNamespace(reference=None, vocab_size=VOCAB)), _model(8, 0),
                              DistillationObjective(settings),
                              teacher=_model(16, 1))


def _raw_batch():
    ids = torch.randint(0, VOCAB, (4, 10), generator=torch.Generator().manual_seed(5))
    mask = torch.ones_like(ids, dtype=torch.bool)
    mask[:, 0] = False
    return ids, mask, torch.arange(4)


@pytest.mark.parametrize("alpha, logit_loss", [(0.5, "kl"), (0.7, "jsd"), (1.0, "kl")])
def test_were_the_samples_the_real_tokens_an_on_policy_batch_would_be_an_ordinary_one(alpha, logit_loss, monkeypatch):
    ordinary = _module(0.0, alpha, logit_loss).batch_loss(_raw_batch())
    module = _module(1.0, alpha, logit_loss)
    monkeypatch.setattr(module.task, "own_samples", lambda model, batch, settings: batch)
    assert torch.allclose(module.batch_loss(_raw_batch()), ordinary, rtol=1e-6, atol=0)


def test_an_on_policy_batch_is_ce_on_real_tokens_plus_alpha_times_the_divergence_on_the_students_samples():
    module, seen = _module(1.0, 0.5), {}
    own_samples = module.task.own_samples

    def recording(model, batch, settings):
        seen["sampled"] = own_samples(model, batch, settings)
        return seen["sampled"]

    module.task.own_samples = recording
    torch.manual_seed(3)
    loss = module.batch_loss(_raw_batch())
    real, sampled = module.task.batch(_raw_batch()), seen["sampled"]
    assert sampled.inputs[:, :3].tolist() == real.inputs[:, :3].tolist()               # the batch's own prefixes
    assert not torch.equal(sampled.inputs, real.inputs) and sampled.mask[:, :2].sum() == 0
    with torch.no_grad():
        ce = losses.cross_entropy(module.student(input_ids=real.inputs).logits, real.targets, real.mask)
        divergence = losses.settings_divergence(module.objective.settings,
                                                module.student(input_ids=sampled.inputs).logits,
                                                module.teacher(input_ids=sampled.inputs).logits, sampled.mask)
    assert float(loss.detach()) == pytest.approx(float(0.5 * ce + 0.5 * divergence), rel=1e-5)
    assert module.generated_tokens == 4 * 7 and module.train_targets == int(real.mask.sum())
