"""Cost-performance analysis of measured configurations: pricing, Pareto frontier, recommendation.

    analysis = CostPerformanceAnalysis(CostModel.a100_80gb())
    pareto = analysis.compute_pareto_frontier(points)
    recommendation = analysis.recommend(points, Constraints(max_cost=50.0, min_accuracy=0.85))

A ``ConfigPoint`` holds what was measured (mean accuracy, the deciding metric's values, mean training hours
on its device, peak memory); the analysis prices it on its GPU by the formula in ``cost/model.py``. The
deciding metric (aggregate/metrics.py: accuracy for classification, the held-out cross-entropy for language
models) and its direction decide the front, the winner and the recommendation.

Pareto frontier: point ``q`` dominates ``p`` when ``q`` is at least as good as ``p`` on every objective and
strictly better on at least one. Exact duplicates do not dominate each other, so both stay on the frontier.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from entrenar_bench.aggregate import selection
from entrenar_bench.aggregate.metrics import ACCURACY, Metric, tie_breaker
from entrenar_bench.cost.model import CostModel, measured_factor, money

SIGNIFICANCE = 0.05
OBJECTIVES = {"cost": False, "accuracy": True, "memory": False, "time": False}  # name -> maximize?
METRIC = "metric"  # the objective that stands for the deciding metric, in its direction
DEFAULT_OBJECTIVES = ("cost", METRIC)


@dataclass
class ConfigPoint:
    """One configuration, measured.

    ``hours``: mean training wall time of its runs on ``device`` (None = already A100-80GB hours);
    ``memory_gb``: the largest measured peak over its runs; ``accuracies``: each run's (test) accuracy;
    ``details``: method, rank, learning rate, batch size... from its config; ``val_accuracy``/``val_loss``:
    mean validation accuracy and loss. The deciding ``metric``: each run's test value (``scores``, for
    Welch's test), their mean and std (``score``, ``score_std``) and the mean validation value
    (``val_score``, what ``recommend`` chooses on); left out, the metric is accuracy and these are the
    accuracy's. ``measured``: the mean test value of every recorded metric (``loss``, ``perplexity``...),
    what the constraints on them check.
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
    metric: Metric = ACCURACY
    score: float | None = None
    score_std: float | None = None
    scores: tuple[float, ...] = ()
    val_score: float | None = None
    measured: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.score is None and self.scores:
            self.score = sum(self.scores) / len(self.scores)
        if self.metric == ACCURACY and self.score is None:
            self.score, self.score_std, self.scores = self.accuracy, self.accuracy_std, self.accuracies
            self.val_score = self.val_accuracy
        self.measured = {"accuracy": self.accuracy, **self.measured}


@dataclass(frozen=True)
class Constraints:
    """Limits a recommendation must meet; None = no limit. Time in hours, memory in GB, cost in USD; the loss,
    perplexity and accuracy are the test values; ``min_metric``/``max_metric`` bound the deciding metric."""

    max_cost: float | None = None
    min_accuracy: float | None = None
    max_time: float | None = None
    max_memory: float | None = None
    max_loss: float | None = None
    max_perplexity: float | None = None
    min_metric: float | None = None
    max_metric: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{f.name} must be a number, got {value!r}")
            if value < 0 and f.name not in ("min_metric", "max_metric"):
                raise ValueError(f"{f.name} must be >= 0, got {value:g}")
        if self.min_accuracy is not None and self.min_accuracy > 1:
            raise ValueError(f"min_accuracy must be between 0 and 1, got {self.min_accuracy:g}")
        if self.max_perplexity is not None and self.max_perplexity < 1:
            raise ValueError(f"max_perplexity must be >= 1 (a perplexity is), got {self.max_perplexity:g}")

    def described(self, metric: Metric = ACCURACY) -> list[str]:
        texts = {"max_cost": "Budget: ${:g}", "min_accuracy": "Min Accuracy: {:g}", "max_time": "Max Time: {:g} h",
                 "max_memory": "Max Memory: {:g} GB", "max_loss": "Max Loss: {:g}",
                 "max_perplexity": "Max Perplexity: {:g}", "min_metric": f"Min {metric.header}: {{:g}}",
                 "max_metric": f"Max {metric.header}: {{:g}}"}
        return [texts[f.name].format(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None]

    def measures(self) -> list[str]:
        """The recorded metrics these constraints read (beyond accuracy and the deciding metric)."""
        return [name for name, value in (("loss", self.max_loss), ("perplexity", self.max_perplexity))
                if value is not None]


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

    @property
    def efficiency(self) -> float:
        """The deciding metric per dollar: ``metric / cost``, or ``(1 / metric) / cost`` when lower is better."""
        goodness = self.point.metric.goodness(self.point.score)
        return goodness / self.cost if self.cost > 0 else math.inf

    def objective(self, name: str) -> float:
        values = {"cost": self.cost, "accuracy": self.point.accuracy, "memory": self.point.memory_gb,
                  "time": self.hours}
        return self.point.score if name in (METRIC, self.point.metric.name) else values[name]


def efficiency_formula(metric: Metric) -> str:
    return f"1 / {metric.name} / cost" if metric.lower_is_better else f"{metric.name} / cost"


def dominates(q: Sequence[float], p: Sequence[float], maximize: Sequence[bool]) -> bool:
    """Whether ``q`` dominates ``p`` (objectives to maximize flagged True, to minimize False)."""
    better = False
    for a, b, up in zip(q, p, maximize):
        if (a < b) if up else (a > b):
            return False
        better |= (a > b) if up else (a < b)
    return better


def non_dominated(values: Sequence[Sequence[float]], maximize: Sequence[bool]) -> list[bool]:
    """For each row of objective values, whether it is on the Pareto frontier (O(n²), n is small)."""
    for row in values:
        if len(row) != len(maximize) or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in row):
            raise ValueError(f"every point needs a finite value for each of {len(maximize)} objectives, got {row!r}")
    return [not any(dominates(q, p, maximize) for q in values) for p in values]


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
    more_accurate: PricedPoint | None = None  # better on the deciding metric (the name predates the metric)
    vs_cheaper: dict[str, Any] | None = None
    nearest: PricedPoint | None = None
    selected_by: str = selection.SELECTED_BY
    metric: Metric = ACCURACY

    @property
    def feasible(self) -> list[PricedPoint]:
        return [p for p in self.priced if not self.violations[p.point.name]]


def metric_of(points: Sequence[ConfigPoint]) -> Metric:
    """The deciding metric of a set of points (the first one's; a sweep's points share it)."""
    return points[0].metric if points else ACCURACY


def objective_directions(metric: Metric = ACCURACY) -> dict[str, bool]:
    """Every objective the front can use, to maximize (True) or minimize: the four fixed ones, ``metric`` and
    the deciding metric's own name."""
    return {**OBJECTIVES, METRIC: not metric.lower_is_better, metric.name: not metric.lower_is_better}


def check_objectives(objectives: Sequence[str], metric: Metric | None = None) -> tuple[str, ...]:
    """The objectives, each once, with ``metric`` resolved to the deciding metric's name (with ``metric``
    None, before the runs exist, only the form is checked: ``metric`` stays)."""
    known = objective_directions(metric or ACCURACY)
    chosen = tuple(dict.fromkeys((metric.name if metric and o == METRIC else o) for o in objectives))
    unknown = [o for o in chosen if o not in known and not (metric is None and o == METRIC)]
    if unknown or len(chosen) < 2:
        names = ", ".join(dict.fromkeys([*OBJECTIVES, METRIC, *([metric.name] if metric else [])]))
        raise ValueError(f"objectives must be two or more of {names} ({METRIC}: the deciding metric); "
                         f"got {', '.join(objectives)}")
    return chosen


def check_measured(points: Sequence[ConfigPoint], constraints: Constraints) -> None:
    """ValueError naming a constraint on a metric none of the points recorded (e.g. a perplexity of classifiers)."""
    for name in constraints.measures():
        if all(p.measured.get(name) is None for p in points):
            known = sorted({k for p in points for k, v in p.measured.items() if v is not None})
            raise ValueError(f"max_{name}: these runs record no {name}; they record {', '.join(known)}")


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
        """Each point priced and Pareto-flagged over ``objectives`` (cost ↓, the metric in its direction,
        accuracy ↑, memory ↓, time ↓)."""
        metric = metric_of(points)
        names = check_objectives(objectives, metric)
        directions = objective_directions(metric)
        priced = [self.price(p) for p in points]
        flags = non_dominated([[p.objective(o) for o in names] for p in priced], [directions[o] for o in names])
        for p, flag in zip(priced, flags):
            p.pareto = flag
        return priced

    def compute_pareto_frontier(self, points: Sequence[ConfigPoint],
                                objectives: Sequence[str] = DEFAULT_OBJECTIVES) -> list[ConfigPoint]:
        """The non-dominated points, in input order; exact duplicates both stay."""
        return [p.point for p in self.analyze(points, objectives) if p.pareto]

    @staticmethod
    def cost_efficiency_winner(priced: Sequence[PricedPoint]) -> PricedPoint | None:
        """The most of the deciding metric per dollar (accuracy per dollar; 1 / loss per dollar)."""
        return max(priced, key=lambda p: p.efficiency, default=None)

    def violations(self, p: PricedPoint, c: Constraints) -> list[tuple[str, float]]:
        """Each constraint ``p`` breaks, with its shortfall relative to the larger of value and limit."""
        pricing, acc, mem, metric = self.cost_model, p.point.accuracy, p.point.memory_gb, p.point.metric
        checks = []  # (value, limit, broken?, text)
        if c.max_cost is not None:
            checks.append((p.cost, c.max_cost, p.cost > c.max_cost, f"cost {money(p.cost)} > max cost ${c.max_cost:g}"))
        if c.min_accuracy is not None:
            checks.append((acc, c.min_accuracy, acc < c.min_accuracy,
                           f"accuracy {acc:.4f} < min accuracy {c.min_accuracy:g}"))
        for name, limit in (("loss", c.max_loss), ("perplexity", c.max_perplexity)):
            value = p.point.measured.get(name)
            if limit is not None:
                checks.append((math.inf if value is None else value, limit, value is None or value > limit,
                               f"no {name} recorded" if value is None
                               else f"{name} {value:.4f} > max {name} {limit:g}"))
        score = p.point.score
        if c.min_metric is not None:
            checks.append((score, c.min_metric, score < c.min_metric,
                           f"{metric.name} {score:.4f} < min {metric.name} {c.min_metric:g}"))
        if c.max_metric is not None:
            checks.append((score, c.max_metric, score > c.max_metric,
                           f"{metric.name} {score:.4f} > max {metric.name} {c.max_metric:g}"))
        if c.max_time is not None:
            checks.append((p.hours, c.max_time, p.hours > c.max_time,
                           f"time {p.hours:.3g} h > max time {c.max_time:g} h"))
        if c.max_memory is not None:
            checks.append((mem, c.max_memory, mem > c.max_memory,
                           f"peak memory {mem:.3g} GB > max memory {c.max_memory:g} GB"))
        checks.append((mem, pricing.memory_gb, not p.fits_gpu_memory,
                       f"peak memory {mem:.3g} GB > the {pricing.name}'s {pricing.memory_gb:g} GB"))
        return [(text, _shortfall(value, limit)) for value, limit, broken, text in checks if broken]

    def recommend(self, points: Sequence[ConfigPoint], constraints: Constraints = Constraints()) -> Recommendation:
        """The point meeting every constraint with the best mean validation value of the deciding metric (the
        selection rule of aggregate/selection.py, ties to the cheaper; points without validation values are
        ranked on the test value), with computed rationale, a cheaper and a better Pareto alternative, and
        Welch's test against the cheaper one. Constraints are checked on the measured (test) values, the
        numbers a user is promised. With nothing feasible, ``best`` is None and ``nearest`` is the point with
        the smallest summed shortfall.
        """
        metric = metric_of(points)
        priced = self.analyze(points)
        broken = {p.point.name: self.violations(p, constraints) for p in priced}
        rec = Recommendation(constraints, None, priced, {k: [t for t, _ in v] for k, v in broken.items()},
                             metric=metric)
        on_val = any(p.val_score is not None for p in points)
        rec.selected_by = metric.val_name if on_val else metric.name
        tie = "val_loss" if tie_breaker(metric).name == "loss" else "val_accuracy"
        feasible = selection.rank(sorted(rec.feasible, key=lambda p: p.cost),
                                  (lambda p: p.point.val_score) if on_val else (lambda p: p.point.score),
                                  (lambda p: getattr(p.point, tie)) if on_val else (lambda p: None), metric)
        if not feasible:
            rec.nearest = min(priced, key=lambda p: sum(s for _, s in broken[p.point.name]), default=None)
            return rec
        best = rec.best = feasible[0]
        sign = -1 if metric.lower_is_better else 1  # sign * score: larger is better
        frontier = [p for p in priced if p.pareto and p is not best]
        rec.cheaper = max((p for p in frontier if p.cost < best.cost),
                          key=lambda p: (sign * p.point.score, -p.cost), default=None)
        rec.more_accurate = min((p for p in frontier if sign * p.point.score > sign * best.point.score),
                                key=lambda p: (p.cost, -sign * p.point.score), default=None)
        rec.rationale = self._rationale(rec, feasible)
        return rec

    def _rationale(self, rec: Recommendation, feasible: list[PricedPoint]) -> list[str]:
        best, c, metric = rec.best, rec.constraints, rec.metric
        only_budget = c.max_cost is not None and c.described(metric) == [f"Budget: ${c.max_cost:g}"]
        within = "within budget" if only_budget else "within the constraints" if c.described(metric) else \
            "of all configurations"
        if len(feasible) > 1:
            runner = feasible[1]
            on_val = rec.selected_by == metric.val_name
            chosen_on = (lambda p: math.nan if p.point.val_score is None else p.point.val_score) if on_val else \
                (lambda p: p.point.score)
            test = f"; test {metric.name} {best.point.score:.4f}" if on_val else ""
            lines = [(f"Best {'validation ' if on_val else ''}{metric.name} {within}: {chosen_on(best):.4f} vs "
                      f"{chosen_on(runner):.4f} ({runner.point.name}){test}, {len(feasible)} of {len(rec.priced)} "
                      "configurations feasible")]
        else:
            lines = [f"The only configuration of {len(rec.priced)} that meets every constraint"]
        full = [p for p in rec.priced if p.point.details.get("method") == "full" and p is not best]
        if full and best.cost > 0:
            ratio = full[0].cost / best.cost
            verdict = f"{ratio:.1f}x cost savings vs" if ratio >= 1 else f"{1 / ratio:.1f}x the cost of"
            lines.append(f"{verdict} full fine-tuning ({money(best.cost)} vs {money(full[0].cost)})")
        as_good = "at least as accurate" if metric == ACCURACY else f"at least as good on {metric.name}"
        if best.pareto:
            lines.append(f"Pareto optimal configuration (no other is cheaper and {as_good})")
        else:
            sign = -1 if metric.lower_is_better else 1
            by = [p.point.name for p in rec.priced if p.pareto and p.cost <= best.cost
                  and sign * p.point.score >= sign * best.point.score]
            lines.append(f"Not Pareto optimal: dominated by {', '.join(by)}")
        lines += self._versus_cheaper(rec)
        return lines

    @staticmethod
    def _versus_cheaper(rec: Recommendation) -> list[str]:
        """Welch's test of the recommended point's runs against the cheaper alternative's."""
        best, cheaper, metric = rec.best, rec.cheaper, rec.metric
        if not cheaper or len(best.point.scores) < 2 or len(cheaper.point.scores) < 2:
            return []
        from entrenar_bench.aggregate.stats import welch  # scipy: here, so the CLI's option tables stay light

        test = welch(best.point.scores, cheaper.point.scores)
        rec.vs_cheaper = {"vs": cheaper.point.name, "metric": metric.name, **test}
        p = test["p_value"]
        n = f"n = {len(best.point.scores)} vs {len(cheaper.point.scores)}"
        better = "more accurate" if metric == ACCURACY else f"better on {metric.name}"
        if p is None or p >= SIGNIFICANCE:
            return [f"Not significantly {better} than the cheaper {cheaper.point.name} "
                    f"(Welch p = {'n/a' if p is None else f'{p:.3f}'}, {n})"]
        return [f"Significantly {better} than the cheaper {cheaper.point.name} (Welch p = {p:.3f}, {n})"]


def _shortfall(value: float, limit: float) -> float:
    """How far a value misses its limit, relative to the larger of the two (1 where nothing was recorded)."""
    if not math.isfinite(value):
        return 1.0
    scale = max(abs(value), abs(limit))
    return abs(value - limit) / scale if scale else 0.0
