"""Cost-performance on the deciding metric: a Pareto front with a lower-is-better metric, the winner per dollar,
recommend with --max-perplexity and on validation loss (synthetic points and cost-performance run directories)."""

import math
import random

import pytest
from runs_on_disk import cost_sweep

from entrenar_bench.aggregate.metrics import LOSS
from entrenar_bench.cost.analysis import (
    ConfigPoint, Constraints, CostPerformanceAnalysis, check_measured, check_objectives,
)
from entrenar_bench.cost.model import CostModel
from entrenar_bench.cost.points import points_from_sweep

A100 = CostPerformanceAnalysis(CostModel.a100_80gb())


def lm_point(name, hours, loss, accuracy=0.3, **kwargs):
    """A language-model configuration judged on its loss (device None: A100 hours, cost = 3 × hours)."""
    return ConfigPoint(name, accuracy, hours, 1.0, metric=LOSS, scores=(loss - 0.01, loss + 0.01), **kwargs)


def test_pareto_front_with_a_lower_is_better_metric():
    points = [lm_point("cheap-poor", 1.0, 3.0, accuracy=0.9), lm_point("mid", 2.0, 2.5),
              lm_point("dear-good", 5.0, 2.0),
              lm_point("dominated", 6.0, 2.6, accuracy=0.99), lm_point("twin", 2.0, 2.5)]
    front = [p.name for p in A100.compute_pareto_frontier(points)]
    assert front == ["cheap-poor", "mid", "dear-good", "twin"]  # cost ↓, loss ↓: accuracy plays no part
    with_accuracy = A100.compute_pareto_frontier(points, ("cost", "metric", "accuracy"))
    assert "dominated" in [p.name for p in with_accuracy]  # the best accuracy of all


def test_lower_is_better_front_matches_the_definition_on_random_grids():
    rng = random.Random(1)
    for _ in range(200):
        points = [lm_point(str(i), rng.randint(1, 4), rng.choice([2.0, 2.5, 3.0])) for i in range(rng.randint(1, 8))]
        front = {p.name for p in A100.compute_pareto_frontier(points)}
        for p in points:
            beaten = any(q.hours <= p.hours and q.score <= p.score and (q.hours < p.hours or q.score < p.score)
                         for q in points)
            assert (p.name in front) == (not beaten)


def test_objectives_name_the_deciding_metric():
    assert check_objectives(["cost", "metric"], LOSS) == ("cost", "loss")
    assert check_objectives(["cost", "loss", "accuracy"], LOSS) == ("cost", "loss", "accuracy")
    assert check_objectives(["cost", "metric"]) == ("cost", "metric")  # before the runs exist: kept
    with pytest.raises(ValueError, match="objectives must be two or more of cost, accuracy, memory, time, metric"):
        check_objectives(["cost", "perplexity"], LOSS)


def test_cost_efficiency_winner_per_dollar_of_the_metric():
    priced = A100.analyze([lm_point("a", 1.0, 4.0), lm_point("b", 2.0, 1.0)])
    winner = A100.cost_efficiency_winner(priced)  # (1 / loss) / cost: a 1/4/3 = 0.083, b 1/1/6 = 0.167
    assert winner.point.name == "b" and winner.efficiency == pytest.approx(1 / 1.0 / 6.0)


def test_recommend_chooses_on_validation_loss_within_max_perplexity(tmp_path):
    points, collection = points_from_sweep(cost_sweep(tmp_path / "cost"))
    assert collection.metric == LOSS and points[0].measured["perplexity"] == pytest.approx(
        sum(math.exp(2.40 + 0.01 * s) for s in range(3)) / 3)
    best = A100.recommend(points)
    assert best.best.point.name == "Full" and best.selected_by == "val_loss"  # the lowest validation loss
    limited = A100.recommend(points, Constraints(max_perplexity=10.0))  # Full 7.4; LoRA r=16 9.1; r=8 11.1
    assert limited.best.point.name == "Full"
    assert limited.violations["LoRA r=8"] == [f"perplexity {points[0].measured['perplexity']:.4f} > max perplexity 10"]
    budget = A100.recommend(points, Constraints(max_perplexity=10.0, max_cost=5.0))
    assert budget.best.point.name == "LoRA r=16" and budget.feasible == [budget.best]
    assert budget.rationale[0] == "The only configuration of 3 that meets every constraint"
    assert budget.cheaper.point.name == "LoRA r=8"  # the cheaper alternative, shown with what excludes it
    full = A100.recommend(points, Constraints(max_loss=2.1, max_metric=2.05))
    assert full.best.point.name == "Full"
    assert full.violations["LoRA r=16"] == ["loss 2.2100 > max loss 2.1", "loss 2.2100 > max loss 2.05"]


def test_recommend_alternatives_and_test_are_on_the_metric(tmp_path):
    points, _ = points_from_sweep(cost_sweep(tmp_path / "cost"))
    rec = A100.recommend(points, Constraints(max_cost=6.0))  # Full costs $12
    assert rec.best.point.name == "LoRA r=16" and rec.cheaper.point.name == "LoRA r=8"
    assert rec.more_accurate.point.name == "Full"  # better on the loss, though less accurate
    assert rec.rationale[0].startswith("Best validation loss within budget: 2.2050 vs 2.4050 (LoRA r=8); "
                                       "test loss 2.2100")
    assert rec.vs_cheaper["metric"] == "loss" and rec.vs_cheaper["mean_diff"] == pytest.approx(-0.2)
    assert any(line.startswith("Significantly better on loss than the cheaper LoRA r=8") for line in rec.rationale)


def test_a_perplexity_limit_on_runs_that_record_none_is_refused():
    classifiers = [ConfigPoint("a", 0.9, 1.0, 1.0), ConfigPoint("b", 0.95, 2.0, 1.0)]
    with pytest.raises(ValueError, match="max_perplexity: these runs record no perplexity; they record accuracy"):
        check_measured(classifiers, Constraints(max_perplexity=10.0))
    with pytest.raises(ValueError, match="max_perplexity must be >= 1"):
        Constraints(max_perplexity=0.5)
