"""Pareto frontier over (cost ↓, accuracy ↑) and optional memory/time objectives."""

import random

import pytest

from entrenar_bench.cost.analysis import ConfigPoint, CostPerformanceAnalysis
from entrenar_bench.cost.model import CostModel
from entrenar_bench.cost.analysis import dominates, non_dominated

A100 = CostPerformanceAnalysis(CostModel.a100_80gb())


def point(name, hours, accuracy, memory=1.0):
    return ConfigPoint(name, accuracy, hours, memory)  # device None: hours are A100 hours, cost = 3 * hours


def names(points):
    return [p.name for p in points]


def test_ties_and_duplicates_give_exactly_the_non_dominated_set():
    points = [
        point("cheap", 1.0, 0.80),
        point("dup-a", 2.0, 0.90), point("dup-b", 2.0, 0.90),    # exact duplicates: both stay
        point("same-cost-worse", 2.0, 0.85),                      # dominated by the duplicates (same cost, less acc)
        point("same-acc-dearer", 3.0, 0.90),                      # dominated (same acc, more cost)
        point("best", 5.0, 0.95),
        point("dominated", 6.0, 0.94),
    ]
    assert names(A100.compute_pareto_frontier(points)) == ["cheap", "dup-a", "dup-b", "best"]


def test_matches_the_definition_on_random_grids_with_many_ties():
    rng = random.Random(0)
    for _ in range(200):
        points = [point(str(i), rng.randint(1, 4), rng.choice([0.7, 0.8, 0.9])) for i in range(rng.randint(1, 8))]
        frontier = set(names(A100.compute_pareto_frontier(points)))
        for p in points:
            beaten = any(q.hours <= p.hours and q.accuracy >= p.accuracy
                         and (q.hours < p.hours or q.accuracy > p.accuracy) for q in points)
            assert (p.name in frontier) == (not beaten)


def test_memory_and_time_objectives_extend_the_frontier():
    points = [point("fast-big", 1.0, 0.9, memory=10.0), point("slow-small", 2.0, 0.9, memory=1.0)]
    assert names(A100.compute_pareto_frontier(points)) == ["fast-big"]
    assert names(A100.compute_pareto_frontier(points, ("cost", "accuracy", "memory"))) == ["fast-big", "slow-small"]
    assert names(A100.compute_pareto_frontier(points, ("time", "memory"))) == ["fast-big", "slow-small"]


def test_dominates_needs_strictly_better_somewhere():
    assert dominates([1, 2], [1, 1], [False, True]) and not dominates([1, 1], [1, 1], [False, True])
    assert non_dominated([], [True]) == []


@pytest.mark.parametrize("objectives", [("cost",), ("cost", "speed"), ()])
def test_bad_objectives_are_rejected(objectives):
    with pytest.raises(ValueError, match="objectives must be two or more"):
        A100.compute_pareto_frontier([point("a", 1, 0.9)], objectives)


def test_non_finite_values_are_rejected():
    with pytest.raises(ValueError, match="finite"):
        A100.compute_pareto_frontier([point("a", float("nan"), 0.9)])
