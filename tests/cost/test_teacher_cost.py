"""The cost study says what the teacher cost and whether its configurations saw equal tokens."""

import json

import pytest
from runs_on_disk import cost_sweep

from entrenar_bench.cost.analysis import CostPerformanceAnalysis
from entrenar_bench.cost.model import CostModel
from entrenar_bench.cost.points import points_from_sweep
from entrenar_bench.cost.report import cost_performance_report


def _with_spent(sweep, tokens_of, teacher_dir=None):
    """Each run of ``cost_sweep`` given tokens_seen (by configuration) and FLOPs, and a teacher where given."""
    for path in sweep.glob("*/result.json"):
        record = json.loads(path.read_text())
        record.update(tokens_seen=tokens_of(record["config"]["configuration"]),
                      flops={"total": 4e9, "student": 3e9, "teacher": 1e9, "generation": 0.0})
        if teacher_dir is not None:
            record["teacher"] = {"cache": str(teacher_dir)}
            record["config"]["teacher"] = {"seed": 0}
        path.write_text(json.dumps(record))
    return sweep


def _report(sweep):
    analysis = CostPerformanceAnalysis(CostModel.a100_80gb())
    points, collection = points_from_sweep(sweep)
    return cost_performance_report(analysis, analysis.analyze(points), ["cost", "metric"], collection)


def test_the_teacher_is_priced_apart_and_its_forward_share_given(tmp_path):
    teacher_dir = tmp_path / "teacher"
    teacher_dir.mkdir()
    (teacher_dir / "teacher.json").write_text(json.dumps({"metrics": {"loss": 1.0, "accuracy": 0.5}, "time_s": 7200}))
    document, text = _report(_with_spent(cost_sweep(tmp_path / "cost"), lambda name: 50_000, teacher_dir))
    t = document["teacher_cost"]
    model = CostModel.a100_80gb()
    assert t["training_s"] == 7200 and t["cost"] == pytest.approx(model.cost(t["hours"]))
    assert t["forward_flops_per_run"] == 1e9 and t["share_of_run_flops"] == pytest.approx(0.25)
    assert document["tokens"]["equal"] and "Teacher: trained once (1 teacher, 7200 s measured" in text
    assert "(25% of a run's FLOPs" in text and "(equal tokens)" in text
    assert document["results"][0]["details"]["tokens_seen"] == 50_000


def test_configurations_at_different_tokens_are_said_to_be_so(tmp_path):
    document, text = _report(_with_spent(cost_sweep(tmp_path / "cost"), lambda name: 1000 * len(name)))
    assert document["teacher_cost"] is None and not document["tokens"]["equal"]
    assert "not equal tokens: add -- train.tokens=N to price at equal tokens" in text
