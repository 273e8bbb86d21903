"""The objective's sum is open: feature terms beyond the task's layer matching and attention transfer are
``(name, weight, module)`` entries, summed after them with their weights; their parameters train."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from entrenar_bench.distill.objective import DistillationObjective, ModelOutputs
from entrenar_bench.distill.settings import DistillSettings

torch.manual_seed(0)
ZS, ZT, Y = torch.randn(6, 5), torch.randn(6, 5), torch.randint(0, 5, (6,))


class LastStateMSE(nn.Module):
    """A feature term: MSE between the student's and the teacher's last hidden state through a learned map."""

    needs_hidden, needs_attentions = True, False

    def __init__(self, width: int):
        super().__init__()
        self.proj = nn.Linear(width, width)

    def forward(self, student, teacher, mask=None):
        return F.mse_loss(self.proj(student.hidden[-1]), teacher.hidden[-1])


def test_an_extra_feature_term_is_weighed_and_trains():
    s = DistillSettings(logit_loss="kl", temperature=2.0, alpha=0.6)
    term = LastStateMSE(3)
    objective = DistillationObjective(s, features=[("last_state", 0.25, term)])
    assert objective.needs_hidden and not objective.needs_attentions
    assert list(objective.parameters()) == list(term.parameters())
    hs, ht = torch.randn(6, 3), torch.randn(6, 3)
    terms = objective(ModelOutputs(ZS, [hs]), Y, None, ModelOutputs(ZT, [ht]))
    plain = DistillationObjective(s)(ModelOutputs(ZS), Y, None, ModelOutputs(ZT))
    assert set(terms) == {"ce", "kd", "last_state", "loss"}
    torch.testing.assert_close(terms["last_state"], F.mse_loss(term.proj(hs), ht))
    torch.testing.assert_close(terms["loss"], plain["loss"] + 0.25 * terms["last_state"])
    terms["loss"].backward()
    assert term.proj.weight.grad is not None


def test_the_sum_without_a_logit_term_keeps_ce_at_weight_one():
    s = DistillSettings(name="none", logit_loss="none", alpha=0.7)  # no logit term: α weighs nothing
    terms = DistillationObjective(s)(ModelOutputs(ZS), Y, None)
    assert set(terms) == {"ce", "loss"} and terms["loss"].item() == F.cross_entropy(ZS, Y).item()
