"""Logit terms as components (``distill/logit_terms.py``): each registered term reads the knobs it declares, a
user's term defined here is chosen by its dotted path and used by the objective with the same weights, and a
path that is not a logit term is refused in one line before launch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import LM_FAST
from entrenar_bench.distill import logit_terms
from entrenar_bench.distill import losses as L
from entrenar_bench.distill.objective import DistillationObjective, ModelOutputs
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.errors import ConfigError
from entrenar_bench.run.checks import validate_config
from entrenar_bench.teacher_signal.sizing import tempers_stored_teacher

torch.manual_seed(0)
B, T, V = 3, 5, 11
ZS, ZT = torch.randn(B, T, V) * 2, torch.randn(B, T, V) * 2
MASK = torch.rand(B, T) > 0.3


def symmetric_kl(student_logits, teacher_logits, mask, temperature=1.0, chunk_tokens=0):
    """Jeffreys' divergence ``KL(p ‖ q) + KL(q ‖ p)`` at temperature T (no T²): a term this file alone defines."""
    options = dict(temperature=temperature, scale_t2=False, chunk_tokens=chunk_tokens)
    return L.forward_kl(student_logits, teacher_logits, mask, **options) + \
        L.reverse_kl(student_logits, teacher_logits, mask, **options)


class ScaledKL(nn.Module):
    """A class term with a learned log-scale (trained with the student) and an own knob kept at its default."""

    def __init__(self, temperature: float = 1.0, scale: float = 2.0):
        super().__init__()
        self.temperature, self.scale = temperature, scale
        self.log_scale = nn.Parameter(torch.zeros(()))

    def forward(self, student_logits, teacher_logits, mask):
        kl = L.forward_kl(student_logits, teacher_logits, mask, temperature=self.temperature, scale_t2=False)
        return self.scale * self.log_scale.exp() * kl


def two_inputs(student_logits, teacher_logits):
    return (student_logits - teacher_logits).sum()


def needs_gamma(student_logits, teacher_logits, mask, gamma):
    return (student_logits - teacher_logits).sum() * gamma


NOT_CALLABLE = 3
SYMMETRIC, SCALED = f"{__name__}.symmetric_kl", f"{__name__}.ScaledKL"


@pytest.mark.parametrize("name", list(logit_terms.REGISTERED))
def test_each_registered_term_declares_exactly_the_knobs_its_function_reads(name):
    function = logit_terms.resolve(name)
    assert function.__module__ == L.__name__
    assert logit_terms.knobs_of(function) == logit_terms.REGISTERED[name].knobs


def test_what_the_registered_terms_read():
    reads = {name: set(term.knobs) - {"chunk_tokens"} for name, term in logit_terms.REGISTERED.items()}
    assert reads == {"kl": {"temperature", "scale_t2"}, "reverse_kl": {"temperature", "scale_t2"},
                     "jsd": {"temperature", "beta"}, "skew_kl": {"temperature", "lam"},
                     "skew_reverse_kl": {"temperature", "lam"}, "tvd": {"temperature"}, "mse": set()}
    assert [n for n in logit_terms.CHOICES if not logit_terms.tempered(n)] == ["mse", "none"]


def test_a_registered_term_gets_its_knobs_from_the_settings():
    s = DistillSettings(logit_loss="jsd", temperature=3.0, beta=0.2, skew_lambda=0.9, loss_chunk_tokens=2)
    assert L.settings_divergence(s, ZS, ZT, MASK).item() == L.jsd(ZS, ZT, MASK, temperature=3.0, beta=0.2).item()
    ablated = DistillSettings(logit_loss="kl", temperature=3.0, temperature_scaling=False)
    assert L.settings_divergence(ablated, ZS, ZT, MASK).item() == L.forward_kl(ZS, ZT, MASK, scale_t2=False).item()


def test_a_users_function_by_dotted_path_reads_the_temperature_and_no_t2():
    assert logit_terms.knobs_for(SYMMETRIC) == ("temperature", "chunk_tokens")
    s = DistillSettings(logit_loss=SYMMETRIC, temperature=2.0)
    value = L.settings_divergence(s, ZS, ZT, MASK)
    q, p = F.log_softmax(ZS / 2, -1), F.log_softmax(ZT / 2, -1)
    per_token = ((p.exp() - q.exp()) * (p - q)).sum(-1)  # KL(p‖q) + KL(q‖p) = Σ (p − q)(log p − log q)
    torch.testing.assert_close(value, per_token[MASK].mean())
    assert value.item() > L.forward_kl(ZS, ZT, MASK, temperature=2.0, scale_t2=False).item()
    assert tempers_stored_teacher(DistillSettings(logit_loss=SYMMETRIC, temperature=2.0))


def test_a_users_term_works_per_example_and_against_a_top_k_teacher():
    s = DistillSettings(logit_loss=SYMMETRIC, temperature=1.0, top_k_tail="drop")
    zs, zt = ZS[:, 0], ZT[:, 0]
    assert L.example_divergence(s, zs, zt).item() == pytest.approx(symmetric_kl(zs[:, None], zt[:, None], None).item())
    top = torch.log_softmax(ZT, -1).topk(4, dim=-1)
    teacher = L.TopKTeacher(top.indices, top.values, V)  # the settings' tail rule (drop) replaces spread
    dropped = symmetric_kl(ZS.gather(-1, top.indices), top.values, MASK)
    torch.testing.assert_close(L.settings_divergence(s, ZS, teacher, MASK), dropped)


def test_the_objective_weighs_a_users_term_as_it_weighs_kl():
    y = torch.randint(0, V, (B,))
    s = DistillSettings(logit_loss=SYMMETRIC, temperature=2.0, alpha=0.7)
    terms = DistillationObjective(s)(ModelOutputs(ZS[:, 0]), y, None, ModelOutputs(ZT[:, 0]))
    expected_kd = symmetric_kl(ZS[:, :1], ZT[:, :1], None, temperature=2.0)
    torch.testing.assert_close(terms["kd"], expected_kd)
    torch.testing.assert_close(terms["loss"], 0.3 * F.cross_entropy(ZS[:, 0], y) + 0.7 * expected_kd)


def test_a_users_class_is_built_once_with_its_knobs_and_its_parameters_train():
    s = DistillSettings(logit_loss=SCALED, temperature=3.0, alpha=0.5)
    objective = DistillationObjective(s)
    assert isinstance(objective.logit, ScaledKL) and objective.logit.temperature == 3.0 and objective.logit.scale == 2.0
    assert [p for p in objective.parameters()] == [objective.logit.log_scale]
    student = ZS.clone().requires_grad_()
    objective(ModelOutputs(student), torch.randint(0, V, (B, T)), MASK, ModelOutputs(ZT))["loss"].backward()
    assert objective.logit.log_scale.grad is not None and student.grad.abs().sum() > 0


@pytest.mark.parametrize("name, message", [
    ("kl_div", "must be one of kl, reverse_kl, jsd, skew_kl, skew_reverse_kl, tvd, mse, uld, gold, none, "
               "or the dotted"),
    ("no_such_module_here.term", "cannot import 'no_such_module_here.term'"),
    (f"{__name__}.not_there", f"cannot import '{__name__}.not_there'"),
    (f"{__name__}.NOT_CALLABLE", "non-callable"),
    (f"{__name__}.two_inputs", "must take (student_logits, teacher_logits, mask) positionally"),
    (f"{__name__}.needs_gamma", "parameter 'gamma' is no distill knob"),
])
def test_what_is_not_a_logit_term_is_refused_in_one_line(name, message):
    with pytest.raises(ValueError) as info:
        logit_terms.check(name)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_the_checks_before_launch_refuse_a_bad_path_and_take_a_good_one(compose_cfg):
    with pytest.raises(ConfigError, match=r"^distill.logit_loss \S*needs_gamma: parameter 'gamma' is no distill knob"):
        validate_config(compose_cfg(*LM_FAST, f"distill.logit_loss={__name__}.needs_gamma"))
    validate_config(compose_cfg(*LM_FAST, f"distill.logit_loss={SYMMETRIC}"))
