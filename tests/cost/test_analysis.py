"""Cost models, the pricing formula, constraints and recommendations (no training)."""

import math

import pytest

from entrenar_bench import ConfigPoint, Constraints, CostModel, CostPerformanceAnalysis
from entrenar_bench.cost.model import CostModelError, measured_factor

CPU = "cpu: Some CPU"


def test_spec_table():
    assert [(m.name, m.cost_per_hour, m.memory_gb, m.performance_factor)
            for m in (CostModel.a100_80gb(), CostModel.v100(), CostModel.t4())] == [
        ("A100-80GB", 3.0, 80, 1.0), ("V100", 2.0, 16, 0.6), ("T4", 0.5, 16, 0.3)]


def test_custom_and_overridden_models():
    assert CostModel.custom(1.2, 24, 0.5).cost(2.0) == pytest.approx(2.4)
    custom = CostModel.named("custom", ["pricing.cost_per_hour=1.2", "pricing.memory_gb=24",
                                        "pricing.performance_factor=0.5"])
    assert (custom.cost_per_hour, custom.memory_gb, custom.performance_factor) == (1.2, 24, 0.5)
    assert CostModel.named("t4", ["pricing.cost_per_hour=0.35"]).cost_per_hour == 0.35


@pytest.mark.parametrize("name, overrides, message", [
    ("h9000", [], "unknown GPU 'h9000'; known: a100-80gb, custom, t4, v100"),
    ("custom", [], "set pricing.cost_per_hour, pricing.memory_gb, pricing.performance_factor"),
    ("t4", ["pricing.cost_per_hour=-1"], "pricing.cost_per_hour must be > 0"),
    ("t4", ["pricing.performance_factor=fast"], "must be a number"),
    ("t4", ["pricing.colour=red"], "bad cost-model override"),
    ("t4", ["gpu.cost_per_hour=1"], "expected pricing.<key>=<value>"),
])
def test_bad_cost_models(name, overrides, message):
    with pytest.raises(CostModelError, match=message.replace("(", r"\(")):
        CostModel.named(name, overrides)


def test_measured_device_factors():
    assert measured_factor("cuda: NVIDIA A100-SXM4-80GB") == (1.0, False)
    assert measured_factor("cuda: Tesla V100-SXM2-16GB") == (0.6, False)
    assert measured_factor("cuda: Tesla T4") == (0.3, False)
    assert measured_factor(CPU) == (1.0, True)           # assumed, and said so
    assert measured_factor(None) == (1.0, False)         # hours given as A100-80GB hours
    assert measured_factor("mixed: cpu: X; cuda: Tesla T4") == (1.0, True)


def test_pricing_formula():
    t4 = CostPerformanceAnalysis(CostModel.t4())
    on_cpu = t4.price(ConfigPoint("x", 0.9, hours=0.6, memory_gb=1.0, device=CPU))
    assert on_cpu.hours == pytest.approx(0.6 * 1.0 / 0.3) and on_cpu.cost == pytest.approx(0.6 / 0.3 * 0.5)
    assert on_cpu.factor_assumed
    on_v100 = t4.price(ConfigPoint("y", 0.9, hours=0.6, memory_gb=1.0, device="cuda: Tesla V100-PCIE-16GB"))
    assert on_v100.hours == pytest.approx(0.6 * 0.6 / 0.3) and not on_v100.factor_assumed


@pytest.mark.parametrize("kwargs, message", [
    ({"max_cost": -1.0}, "max_cost must be >= 0"),
    ({"min_accuracy": 1.5}, "min_accuracy must be between 0 and 1"),
    ({"max_time": math.nan}, "max_time must be a number"),
    ({"max_memory": "16"}, "max_memory must be a number"),
])
def test_bad_constraints(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Constraints(**kwargs)


POINTS = [
    ConfigPoint("LoRA r=8", 0.845, 2.1, 12.0, 0.004, (0.841, 0.845, 0.849), details={"method": "lora"}),
    ConfigPoint("LoRA r=16", 0.862, 3.2, 14.0, 0.003, (0.859, 0.862, 0.865), details={"method": "lora"}),
    ConfigPoint("LoRA r=32", 0.871, 5.8, 14.2, 0.002, (0.869, 0.871, 0.873), details={"method": "lora"}),
    ConfigPoint("LoRA r=64", 0.878, 10.4, 15.0, 0.010, (0.868, 0.878, 0.888), details={"method": "lora"}),
    ConfigPoint("Full fine-tune", 0.882, 48.2, 40.0, 0.003, (0.879, 0.882, 0.885), details={"method": "full"}),
]
A100 = CostPerformanceAnalysis(CostModel.a100_80gb())


def test_recommend_most_accurate_feasible_with_computed_rationale():
    rec = A100.recommend(POINTS, Constraints(max_cost=20.0, min_accuracy=0.85))
    assert rec.best.point.name == "LoRA r=32"                      # $17.40, the best of the three under $20
    assert [p.point.name for p in rec.feasible] == ["LoRA r=16", "LoRA r=32"]
    assert rec.violations["LoRA r=8"] == ["accuracy 0.8450 < min accuracy 0.85"]
    assert rec.violations["LoRA r=64"] == ["cost $31.20 > max cost $20"]
    assert rec.rationale[0].startswith("Best accuracy within the constraints: 0.8710 vs 0.8620 (LoRA r=16)")
    assert f"{144.6 / 17.4:.1f}x cost savings vs full fine-tuning ($17.40 vs $144.60)" in rec.rationale
    assert "Pareto optimal configuration" in rec.rationale[2]
    assert rec.cheaper.point.name == "LoRA r=16" and rec.more_accurate.point.name == "LoRA r=64"
    assert rec.vs_cheaper["vs"] == "LoRA r=16" and 0 < rec.vs_cheaper["p_value"] < 0.05
    assert "Significantly more accurate than the cheaper LoRA r=16" in rec.rationale[3]


def test_recommend_ties_go_to_the_cheaper():
    twins = [ConfigPoint("dear", 0.9, 2.0, 1.0), ConfigPoint("cheap", 0.9, 1.0, 1.0)]
    assert A100.recommend(twins).best.point.name == "cheap"


def test_recommend_chooses_on_validation_accuracy_and_says_so():
    points = [ConfigPoint("test-lucky", 0.95, 1.0, 1.0, val_accuracy=0.90, val_loss=0.3),
              ConfigPoint("val-best", 0.93, 2.0, 1.0, val_accuracy=0.92, val_loss=0.2),
              ConfigPoint("val-tied-dearer", 0.94, 3.0, 1.0, val_accuracy=0.92, val_loss=0.2)]
    rec = A100.recommend(points)
    assert rec.best.point.name == "val-best" and rec.selected_by == "val_accuracy"  # the tie goes to the cheaper
    assert rec.rationale[0].startswith("Best validation accuracy of all configurations: 0.9200 vs 0.9200")


def test_recommend_says_when_not_significant():
    rec = A100.recommend(POINTS, Constraints(max_cost=40.0))
    assert rec.best.point.name == "LoRA r=64" and rec.cheaper.point.name == "LoRA r=32"
    assert any(line.startswith("Not significantly more accurate than the cheaper LoRA r=32 (Welch p = ")
               for line in rec.rationale)


def test_gpu_memory_is_a_constraint():
    rec = CostPerformanceAnalysis(CostModel.v100()).recommend(POINTS)
    assert "peak memory 40 GB > the V100's 16 GB" in rec.violations["Full fine-tune"]
    assert rec.best.point.name == "LoRA r=64"


def test_nothing_feasible_names_each_constraint_and_the_nearest():
    rec = A100.recommend(POINTS, Constraints(max_cost=5.0, min_accuracy=0.88, max_time=1.0, max_memory=13.0))
    assert rec.best is None and rec.feasible == []
    assert rec.violations["LoRA r=8"] == ["cost $6.30 > max cost $5", "accuracy 0.8450 < min accuracy 0.88",
                                          "time 2.1 h > max time 1 h"]
    assert "peak memory 40 GB > max memory 13 GB" in rec.violations["Full fine-tune"]
    assert rec.nearest.point.name == "LoRA r=8"


def test_cost_efficiency_winner():
    priced = A100.analyze(POINTS)
    winner = A100.cost_efficiency_winner(priced)
    assert winner.point.name == "LoRA r=8" and winner.accuracy_per_dollar == pytest.approx(0.845 / 6.3)
