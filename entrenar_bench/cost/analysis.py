"""Cost-performance analysis of measured configurations: pricing, Pareto frontier, recommendation.

    analysis = CostPerformanceAnalysis(CostModel.a100_80gb())
    pareto = analysis.compute_pareto_frontier(points)
    recommendation = analysis.recommend(points, Constraints(max_cost=50.0, min_accuracy=0.85))

A ``ConfigPoint`` holds what was measured (mean accuracy, mean training hours on its device, peak
memory); the analysis prices it on its GPU by the formula in ``cost/model.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from entrenar_bench.aggregate import selection
from entrenar_bench.aggregate.stats import welch
from entrenar_bench.cost.model import CostModel, measured_factor, money
from entrenar_bench.cost.pareto import DEFAULT_OBJECTIVES, OBJECTIVES, non_dominated

SIGNIFICANCE = 0.05


@dataclass
class ConfigPoint:
    """One configuration, measured.

    ``hours``: mean training wall time of its runs on ``device`` (None = already A100-80GB hours);
    ``memory_gb``: the largest measured peak over its runs; ``accuracies``: each run's (test) accuracy
    (for Welch's test); ``details``: method, rank, learning rate, batch size... from its config;
    ``val_accuracy``/``val_loss``: mean validation accuracy and loss, what ``recommend`` chooses on.
    """

    name: str
    accuracy: float
    hours: float
    memory_gb: float
    accuracy_std: float | None = None
    accuracies: tuple[float, ...] = ()
    device: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    val_accuracy: float | None = None
    val_loss: float | None = None


@dataclass(frozen=True)
class Constraints:
    """Limits a recommendation must meet; None = no limit. Time in hours, memory in GB, cost in USD."""

    max_cost: float | None = None
    min_accuracy: float | None = None
    max_time: float | None = None
    max_memory: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{f.name} must be a number, got {value!r}")
            if value < 0:
                raise ValueError(f"{f.name} must be >= 0, got {value:g}")
        if self.min_accuracy is not None and self.min_accuracy > 1:
            raise ValueError(f"min_accuracy must be between 0 and 1, got {self.min_accuracy:g}")

    def described(self) -> list[str]:
        return [text for text, value in (
            (f"Budget: ${self.max_cost:g}" if self.max_cost is not None else "", self.max_cost),
            (f"Min Accuracy: {self.min_accuracy:g}" if self.min_accuracy is not None else "", self.min_accuracy),
            (f"Max Time: {self.max_time:g} h" if self.max_time is not None else "", self.max_time),
            (f"Max Memory: {self.max_memory:g} GB" if self.max_memory is not None else "", self.max_memory),
        ) if value is not None]


@dataclass
class PricedPoint:
    """A point priced on one GPU: ``hours`` and ``cost`` on it, and ``pareto`` over the analysed set."""

    point: ConfigPoint
    hours: float
    cost: float
    factor_assumed: bool
    fits_gpu_memory: bool
    pareto: bool = False

    @property
    def accuracy_per_dollar(self) -> float:
        return self.point.accuracy / self.cost if self.cost > 0 else math.inf

    def objective(self, name: str) -> float:
        return {"cost": self.cost, "accuracy": self.point.accuracy, "memory": self.point.memory_gb,
                "time": self.hours}[name]


@dataclass
class Recommendation:
    """The best configuration that meets every constraint (chosen by aggregate/selection.py's rule on
    ``selected_by``; the table's order is by cost, so last ties go to the cheaper), and why."""

    constraints: Constraints
    best: PricedPoint | None
    priced: list[PricedPoint]
    violations: dict[str, list[str]]
    rationale: list[str] = field(default_factory=list)
    cheaper: PricedPoint | None = None
    more_accurate: PricedPoint | None = None
    vs_cheaper: dict[str, Any] | None = None
    nearest: PricedPoint | None = None
    selected_by: str = selection.SELECTED_BY

    @property
    def feasible(self) -> list[PricedPoint]:
        return [p for p in self.priced if not self.violations[p.point.name]]


def check_objectives(objectives: Sequence[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(objectives))
    unknown = [o for o in chosen if o not in OBJECTIVES]
    if unknown or len(chosen) < 2:
        raise ValueError(f"objectives must be two or more of {', '.join(OBJECTIVES)}; got {', '.join(objectives)}")
    return chosen


class CostPerformanceAnalysis:
    """Prices measured points on one GPU's cost model."""

    def __init__(self, cost_model: CostModel):
        self.cost_model = cost_model

    def price(self, point: ConfigPoint) -> PricedPoint:
        factor, assumed = measured_factor(point.device)
        hours = self.cost_model.hours(point.hours, factor)
        return PricedPoint(point, hours, self.cost_model.cost(hours), assumed,
                           point.memory_gb <= self.cost_model.memory_gb)

    def analyze(self, points: Sequence[ConfigPoint], objectives: Sequence[str] = DEFAULT_OBJECTIVES
                ) -> list[PricedPoint]:
        """Each point priced and Pareto-flagged over ``objectives`` (cost ↓, accuracy ↑, memory ↓, time ↓)."""
        names = check_objectives(objectives)
        priced = [self.price(p) for p in points]
        flags = non_dominated([[p.objective(o) for o in names] for p in priced], [OBJECTIVES[o] for o in names])
        for p, flag in zip(priced, flags):
            p.pareto = flag
        return priced

    def compute_pareto_frontier(self, points: Sequence[ConfigPoint],
                                objectives: Sequence[str] = DEFAULT_OBJECTIVES) -> list[ConfigPoint]:
        """The non-dominated points, in input order; exact duplicates both stay."""
        return [p.point for p in self.analyze(points, objectives) if p.pareto]

    @staticmethod
    def cost_efficiency_winner(priced: Sequence[PricedPoint]) -> PricedPoint | None:
        """Highest accuracy per dollar."""
        return max(priced, key=lambda p: p.accuracy_per_dollar, default=None)

    def violations(self, p: PricedPoint, c: Constraints) -> list[tuple[str, float]]:
        """Each constraint ``p`` breaks, with its shortfall relative to the larger of value and limit."""
        gpu, acc, mem = self.cost_model, p.point.accuracy, p.point.memory_gb
        checks = []  # (value, limit, broken?, text)
        if c.max_cost is not None:
            checks.append((p.cost, c.max_cost, p.cost > c.max_cost, f"cost {money(p.cost)} > max cost ${c.max_cost:g}"))
        if c.min_accuracy is not None:
            checks.append((acc, c.min_accuracy, acc < c.min_accuracy,
                           f"accuracy {acc:.4f} < min accuracy {c.min_accuracy:g}"))
        if c.max_time is not None:
            checks.append((p.hours, c.max_time, p.hours > c.max_time,
                           f"time {p.hours:.3g} h > max time {c.max_time:g} h"))
        if c.max_memory is not None:
            checks.append((mem, c.max_memory, mem > c.max_memory,
                           f"peak memory {mem:.3g} GB > max memory {c.max_memory:g} GB"))
        checks.append((mem, gpu.memory_gb, not p.fits_gpu_memory,
                       f"peak memory {mem:.3g} GB > the {gpu.name}'s {gpu.memory_gb:g} GB"))
        return [(text, abs(value - limit) / max(abs(value), abs(limit))) for value, limit, broken, text in checks
                if broken]

    def recommend(self, points: Sequence[ConfigPoint], constraints: Constraints = Constraints()) -> Recommendation:
        """The point meeting every constraint with the highest mean validation accuracy (the selection rule
        of aggregate/selection.py, ties to the cheaper; points without validation accuracy are ranked on
        accuracy), with computed rationale, a cheaper and a more accurate Pareto alternative, and Welch's
        test against the cheaper one. Constraints are checked on the measured (test) accuracy, the number
        a user is promised. With nothing feasible, ``best`` is None and ``nearest`` is the point with the
        smallest summed shortfall.
        """
        priced = self.analyze(points)
        broken = {p.point.name: self.violations(p, constraints) for p in priced}
        rec = Recommendation(constraints, None, priced, {k: [t for t, _ in v] for k, v in broken.items()})
        on_val = any(p.val_accuracy is not None for p in points)
        rec.selected_by = selection.SELECTED_BY if on_val else "accuracy"
        feasible = selection.rank(sorted(rec.feasible, key=lambda p: p.cost),
                                  (lambda p: p.point.val_accuracy) if on_val else (lambda p: p.point.accuracy),
                                  (lambda p: p.point.val_loss) if on_val else (lambda p: None))
        if not feasible:
            rec.nearest = min(priced, key=lambda p: sum(s for _, s in broken[p.point.name]), default=None)
            return rec
        best = rec.best = feasible[0]
        frontier = [p for p in priced if p.pareto and p is not best]
        rec.cheaper = max((p for p in frontier if p.cost < best.cost),
                          key=lambda p: (p.point.accuracy, -p.cost), default=None)
        rec.more_accurate = min((p for p in frontier if p.point.accuracy > best.point.accuracy),
                                key=lambda p: (p.cost, -p.point.accuracy), default=None)
        rec.rationale = self._rationale(rec, feasible)
        return rec

    def _rationale(self, rec: Recommendation, feasible: list[PricedPoint]) -> list[str]:
        best = rec.best
        c = rec.constraints
        only_budget = c.max_cost is not None and (c.min_accuracy, c.max_time, c.max_memory) == (None, None, None)
        within = "within budget" if only_budget else "within the constraints" if c.described() else \
            "of all configurations"
        if len(feasible) > 1:
            runner = feasible[1]
            on_val = rec.selected_by == selection.SELECTED_BY
            chosen_on = (lambda p: p.point.val_accuracy or math.nan) if on_val else (lambda p: p.point.accuracy)
            test = f"; test accuracy {best.point.accuracy:.4f}" if on_val else ""
            lines = [(f"Best {'validation ' if on_val else ''}accuracy {within}: {chosen_on(best):.4f} vs "
                      f"{chosen_on(runner):.4f} ({runner.point.name}){test}, {len(feasible)} of {len(rec.priced)} "
                      "configurations feasible")]
        else:
            lines = [f"The only configuration of {len(rec.priced)} that meets every constraint"]
        full = [p for p in rec.priced if p.point.details.get("method") == "full" and p is not best]
        if full and best.cost > 0:
            ratio = full[0].cost / best.cost
            verdict = f"{ratio:.1f}x cost savings vs" if ratio >= 1 else f"{1 / ratio:.1f}x the cost of"
            lines.append(f"{verdict} full fine-tuning ({money(best.cost)} vs {money(full[0].cost)})")
        if best.pareto:
            lines.append("Pareto optimal configuration (no other is cheaper and at least as accurate)")
        else:
            by = [p.point.name for p in rec.priced if p.pareto and p.cost <= best.cost
                  and p.point.accuracy >= best.point.accuracy]
            lines.append(f"Not Pareto optimal: dominated by {', '.join(by)}")
        cheaper = rec.cheaper
        if cheaper and len(best.point.accuracies) >= 2 and len(cheaper.point.accuracies) >= 2:
            test = welch(best.point.accuracies, cheaper.point.accuracies)
            rec.vs_cheaper = {"vs": cheaper.point.name, **test}
            p = test["p_value"]
            n = f"n = {len(best.point.accuracies)} vs {len(cheaper.point.accuracies)}"
            if p is None or p >= SIGNIFICANCE:
                lines.append(f"Not significantly more accurate than the cheaper {cheaper.point.name} "
                             f"(Welch p = {'n/a' if p is None else f'{p:.3f}'}, {n})")
            else:
                lines.append(f"Significantly more accurate than the cheaper {cheaper.point.name} "
                             f"(Welch p = {p:.3f}, {n})")
        return lines
