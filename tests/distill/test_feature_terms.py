"""Feature terms as components (``distill/feature_terms.py``): the task's own terms weighed by their ``distill``
keys, a user's term defined here chosen by one ``terms.<name>`` entry (its knobs its own keys) and summed by the
objective with its weight, an entry the term cannot take refused in one line before launch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from entrenar_bench.distill import feature_terms
from entrenar_bench.distill.objective import DistillationObjective, ModelOutputs
from entrenar_bench.distill.settings import DistillSettings
from entrenar_bench.errors import ConfigError
from entrenar_bench.run.app import distill_settings
from entrenar_bench.run.baseline import student_alone
from entrenar_bench.run.checks import validate_config

torch.manual_seed(0)
ZS, ZT, Y = torch.randn(6, 5), torch.randn(6, 5), torch.randint(0, 5, (6,))
HS, HT = torch.randn(6, 3), torch.randn(6, 4)


def logit_gap(student, teacher, mask, scale=1.0):
    """A function term on the logits alone: ``scale · mean (z_s − z_t)²``."""
    return scale * (student.logits - teacher.logits.detach()).pow(2).mean()


class LastState(nn.Module):
    """A class term: MSE between the student's last state through a learned map and the teacher's."""

    needs_hidden = True

    def __init__(self, student, teacher, width: int, power: int = 2):
        super().__init__()
        self.proj = nn.Linear(width, teacher.width)
        self.power, self.student_width = power, student.width

    def forward(self, student, teacher, mask):
        return (self.proj(student.hidden[-1]) - teacher.hidden[-1]).abs().pow(self.power).mean()


class Attends:
    needs_attentions = True

    def __call__(self, student, teacher, mask):
        return student.logits.sum() * 0


def two_inputs(student, teacher):
    return student.logits.sum()


GAP, STATE = f"{__name__}.logit_gap", f"{__name__}.LastState"


class Model:
    def __init__(self, width):
        self.width = width


class FakeTask:
    """Builds the task's own terms it is asked for, recording the names."""

    def __init__(self):
        self.asked = None

    def feature_terms(self, names, student, teacher):
        self.asked = list(names)
        return {name: nn.Identity() for name in names}


def test_an_entry_becomes_a_term_with_its_knobs_and_needs():
    terms = feature_terms.configured({"gap": {"_component_": GAP, "weight": 0.5, "scale": 3.0},
                                      "state": {"_component_": STATE, "weight": 2, "width": 3}})
    assert [(t.name, t.component, t.weight, t.knobs) for t in terms] == [("gap", GAP, 0.5, {"scale": 3.0}),
                                                                         ("state", STATE, 2.0, {"width": 3})]
    assert [(t.needs_hidden, t.needs_attentions) for t in terms] == [(False, False), (True, False)]
    assert feature_terms.configured(None) == ()
    assert feature_terms.configured({"gap": {"_component_": GAP, "weight": 0}}) == ()  # off, as layer_weight=0


@pytest.mark.parametrize("node, message", [
    ({"gap": {"weight": 1}}, "terms.gap must be {_component_: module.name"),
    ({"gap": {"_component_": GAP}}, "terms.gap.weight must be a number >= 0, got None"),
    ({"gap": {"_component_": GAP, "weight": -1}}, "terms.gap.weight must be a number >= 0, got -1"),
    ({"gap": {"_component_": GAP, "weight": True}}, "terms.gap.weight must be a number >= 0, got True"),
    ({"kd": {"_component_": GAP, "weight": 1}}, "terms.kd: a term's name is an identifier other than"),
    ({"layers": {"_component_": GAP, "weight": 1}}, "terms.layers: a term's name is an identifier other than"),
    ({"gap": {"_component_": f"{__name__}.nothing_here", "weight": 1}}, "terms.gap._component_: cannot import"),
    ({"gap": {"_component_": GAP, "weight": 1, "scal": 2}}, "terms.gap: 'scal' is no knob of logit_gap (its knobs: "
                                                            "scale)"),
    ({"state": {"_component_": STATE, "weight": 1}}, "terms.state: LastState needs 'width' (a key of the entry)"),
    ({"state": {"_component_": STATE, "weight": 1, "width": 3, "student": 1}}, "terms.state: 'student' is no knob"),
    ({"two": {"_component_": f"{__name__}.two_inputs", "weight": 1}},
     "terms.two must take (student, teacher, mask) positionally, takes (student, teacher)"),
    ([1, 2], "terms must map names to"),
])
def test_an_entry_the_term_cannot_take_is_refused_in_one_line(node, message):
    with pytest.raises(ValueError) as e:
        feature_terms.configured(node)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_the_tasks_own_terms_come_first_by_their_weights_then_the_users():
    settings = DistillSettings(layer_weight=0.3, terms=feature_terms.configured(
        {"state": {"_component_": STATE, "weight": 0.25, "width": 3, "power": 1},
         "gap": {"_component_": GAP, "weight": 0.5}}))
    task = FakeTask()
    built = feature_terms.build(settings, task, Model(3), Model(4))
    assert task.asked == ["layers"] and [(name, weight) for name, weight, _ in built] == [
        ("layers", 0.3), ("state", 0.25), ("gap", 0.5)]
    state, gap = built[1][2], built[2][2]
    assert isinstance(state, LastState) and state.proj.out_features == 4 and state.student_width == 3
    assert state.power == 1 and gap.needs_hidden is False
    assert feature_terms.build(DistillSettings(), task, None, None) == []


def test_the_objective_sums_a_users_terms_with_their_weights_and_knobs():
    settings = DistillSettings(logit_loss="kl", temperature=2.0, alpha=0.6, terms=feature_terms.configured(
        {"gap": {"_component_": GAP, "weight": 0.5, "scale": 3.0},
         "state": {"_component_": STATE, "weight": 0.25, "width": 3}}))
    objective = DistillationObjective(settings, feature_terms.build(settings, FakeTask(), Model(3), Model(4)))
    assert objective.needs_hidden and not objective.needs_attentions
    assert list(objective.parameters()) == list(objective.state.parameters())  # the class term is a submodule
    student, teacher = ModelOutputs(ZS.clone().requires_grad_(), [HS]), ModelOutputs(ZT, [HT])
    terms = objective(student, Y, None, teacher)
    plain = DistillationObjective(DistillSettings(logit_loss="kl", temperature=2.0, alpha=0.6))(student, Y, None,
                                                                                                teacher)
    assert set(terms) == {"ce", "kd", "gap", "state", "loss"}
    torch.testing.assert_close(terms["gap"], 3.0 * F.mse_loss(ZS, ZT))
    torch.testing.assert_close(terms["state"], F.mse_loss(objective.state.proj(HS), HT))
    torch.testing.assert_close(terms["loss"], plain["loss"] + 0.5 * terms["gap"] + 0.25 * terms["state"])
    terms["loss"].backward()
    assert objective.state.proj.weight.grad is not None and student.logits.grad is not None


def test_a_term_may_not_take_a_name_the_objective_holds():
    with pytest.raises(ValueError, match="cannot be called 'features'"):
        DistillationObjective(DistillSettings(), [("features", 1.0, nn.Identity())])


def test_a_users_term_runs_against_the_teacher_online_and_says_what_it_reads():
    def settings(entry, **base):
        return DistillSettings(**base, terms=feature_terms.configured({"t": {"weight": 1, **entry}}))

    gap = settings({"_component_": GAP}, name="none", logit_loss="none", alpha=0.0)
    assert gap.needs_teacher and not gap.needs_hidden and not gap.uses_cached_outputs  # logits, online
    attends = settings({"_component_": f"{__name__}.Attends"})
    assert attends.needs_attentions and attends.needs_hidden  # features: the teacher runs online
    state = settings({"_component_": STATE, "width": 3})
    assert state.needs_hidden and not state.needs_attentions and not state.uses_cached_outputs
    plain = DistillSettings()
    assert plain.uses_cached_outputs and not plain.needs_hidden and not plain.needs_attentions


def test_one_yaml_line_adds_a_term_and_the_checks_refuse_a_bad_one(compose_cfg, tmp_path):
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "mine.yaml").write_text(
        f"# @package _global_\nterms:\n  gap: {{_component_: {GAP}, weight: 0.5, scale: 2.0}}\n")
    cfg = compose_cfg(f"hydra.searchpath=[file://{tmp_path}]", "+experiment=mine")
    assert [(t.name, t.weight, t.knobs) for t in distill_settings(cfg).terms] == [("gap", 0.5, {"scale": 2.0})]
    assert distill_settings(compose_cfg()).terms == ()
    with pytest.raises(ConfigError, match=r"^terms.gap: 'scal' is no knob of logit_gap"):
        validate_config(compose_cfg(f"+terms.gap={{_component_: {GAP}, weight: 1, scal: 2}}"))
    with pytest.raises(ConfigError, match=r"^distill.terms: no such setting"):
        validate_config(compose_cfg(f"+distill.terms.gap={{_component_: {GAP}, weight: 1}}"))
    with pytest.raises(ConfigError, match="not with layer matching, attention transfer or a user's feature terms"):
        validate_config(compose_cfg(f"+terms.gap={{_component_: {GAP}, weight: 1}}", "distill.on_policy=0.5",
                                    "+experiment=lm"))


def test_the_baseline_is_the_student_alone_without_the_users_terms(compose_cfg):
    override = f"+terms.gap={{_component_: {GAP}, weight: 1}}"
    assert "terms" not in student_alone(compose_cfg("distill=none", override))
    assert "terms" in student_alone(compose_cfg("distill=kd", override))
