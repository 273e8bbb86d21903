"""The ``cost-performance`` and ``recommend`` reports: a JSON document, the spec's text layout, and
``pareto.png`` (every run, each configuration's mean and 95% CI against its cost, the front, the winner).

Both are on the deciding metric (``"metric": {"name", "lower_is_better"}`` in the JSON; each point's values
under ``metric``), and keep every accuracy field."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from entrenar_bench.aggregate import plots, selection
from entrenar_bench.aggregate.collect import Collection
from entrenar_bench.aggregate.metrics import ACCURACY, Metric
from entrenar_bench.aggregate.report import ci_text, failure_text, failures, metric_headers, table, title
from entrenar_bench.aggregate.stats import describe
from entrenar_bench.cost.analysis import (
    CostPerformanceAnalysis, PricedPoint, Recommendation, efficiency_formula, metric_of,
)
from entrenar_bench.cost.model import assumption_text, money, pricing_formula
from entrenar_bench.cost.teacher_cost import equal_tokens, teacher_cost, teacher_lines

MEMORY_KINDS = {"cuda_max_allocated": "peak CUDA memory allocated",
                "cpu_rss_growth": "peak growth of the process's resident memory during training (CPU)"}


def _std(value: float | None) -> str:
    return "n/a" if value is None else f"±{value:.3f}"


def _short_value(value: float, metric: Metric) -> str:
    """``0.862 acc`` (the spec's form), or ``2.310 loss``."""
    return f"{value:.3f} {'acc' if metric == ACCURACY else metric.name}"


def _short(p: PricedPoint, metric: Metric) -> str:
    return _short_value(p.point.score, metric)


def pricing(analysis: CostPerformanceAnalysis, priced: Sequence[PricedPoint]) -> dict[str, Any]:
    devices = sorted({p.point.device for p in priced if p.point.device})
    return {"formula": pricing_formula(analysis.cost_model), "measured_devices": devices,
            "assumption": assumption_text(devices),
            "hours": "mean measured training wall time of the runs (time_s / 3600, sampling of on-policy continuations "
                     "included: generation_hours is its share), then priced",
            "memory": "largest measured peak of the runs"}


def _pricing_lines(document: dict[str, Any]) -> list[str]:
    p = document["pricing"]
    lines = [f"Pricing: {p['formula']}."]
    if p["assumption"]:
        lines.append(f"Assumption: {p['assumption']}")
    return lines


def point_entry(p: PricedPoint) -> dict[str, Any]:
    d, m = p.point.details, p.point
    return {
        "config": p.point.name, "method": d.get("method"), "rank": d.get("rank"), "n": len(p.point.accuracies),
        "accuracy": p.point.accuracy, "accuracy_std": p.point.accuracy_std, "accuracies": list(p.point.accuracies),
        "ci95": describe(p.point.accuracies)["ci95"], "val_accuracy": p.point.val_accuracy,
        "measured_hours": p.point.hours, "measured_device": p.point.device, "factor_assumed": p.factor_assumed,
        "hours": p.hours, "generation_hours": p.hours * d.get("generation_share", 0.0),  # sampling, priced in hours
        "cost": p.cost, "memory_gb": p.point.memory_gb, "fits_gpu_memory": p.fits_gpu_memory,
        "trainable_params": d.get("trainable_params"), "accuracy_per_dollar": p.accuracy_per_dollar,
        "pareto": p.pareto, "details": d,
        "metric": {"name": m.metric.name, "mean": m.score, "std": m.score_std, "values": list(m.scores),
                   "ci95": describe(m.scores)["ci95"], "val_mean": m.val_score, "per_dollar": p.efficiency},
        "measured": m.measured,
    }


def cost_performance_report(analysis: CostPerformanceAnalysis, priced: Sequence[PricedPoint],
                            objectives: Sequence[str], collection: Collection) -> tuple[dict[str, Any], str]:
    cost_model = analysis.cost_model
    metric = metric_of([p.point for p in priced])
    winner = analysis.cost_efficiency_winner(priced)
    pareto_count = sum(p.pareto for p in priced)
    kinds = sorted({p.point.details.get("memory_kind") for p in priced} - {None})
    document = {
        "analysis": "cost_performance",
        "metric": metric.as_dict(),
        "gpu": cost_model.as_dict(),  # the --gpu choice, priced
        "pricing": pricing(analysis, priced),
        "objectives": list(objectives),
        "results": [point_entry(p) for p in priced],
        "pareto_count": pareto_count,
        "cost_efficiency_winner": {"config": winner.point.name, "accuracy_per_dollar": winner.accuracy_per_dollar,
                                   "efficiency": winner.efficiency, "efficiency_formula": efficiency_formula(metric)}
        if winner else None,
        "memory_kind": [MEMORY_KINDS.get(k, k) for k in kinds],
        "teacher_cost": teacher_cost(collection, cost_model),
        "sweep_dir": str(collection.sweep_dir),
        "failures": failures(collection),
        "problems": collection.problems,
    }
    header = metric_headers(metric)[0]
    extra = [] if metric == ACCURACY else ["Accuracy"]
    rows = [[p.point.name, f"{p.hours:.3g}", money(p.cost), f"{p.point.score:.3f}", _std(p.point.score_std),
             ci_text(entry["metric"]["ci95"], bounded=metric.bounded), *(f"{p.point.accuracy:.3f}" for _ in extra),
             str(len(p.point.scores)), f"{p.point.memory_gb:.3g}" + ("" if p.fits_gpu_memory else " (too big)"),
             "Yes" if p.pareto else "No"]
            for p, entry in zip(priced, document["results"])]
    head = f"Cost-Performance Analysis ({cost_model.name} @ ${cost_model.cost_per_hour:.2f}/hr)"
    lines = [title(head), "",
             table(["Config", "Hours", "Cost", header, "Std Dev", "95% CI", *extra, "n", "Memory (GB)", "Pareto"],
                   rows),
             "", f"Pareto Frontier: {pareto_count} configurations ({', '.join(objectives)}; "
                 f"{metric.described()})"]
    if winner:
        unit = "acc/$" if metric == ACCURACY else f"{efficiency_formula(metric)}"
        lines.append(f"Cost efficiency winner: {winner.point.name} ({winner.efficiency:.4g} {unit})")
    document["tokens"] = equal_tokens(document["results"])
    lines += ["", *_pricing_lines(document), *teacher_lines(document, money)]
    if kinds:
        lines.append(f"Memory: {'; '.join(document['memory_kind'])}.")
    plot = _pareto_plot(document, head, collection)
    if plot:
        document["plot"] = plot
        lines.append(f"Plot: {plot}")
    lines.append(f"Sweep: {collection.sweep_dir}")
    lines += failure_text(document["failures"], collection.problems)
    return document, "\n".join(lines)


def _pareto_plot(document: dict[str, Any], heading: str, collection: Collection) -> str | None:
    """``pareto.png`` in the sweep directory: cost against accuracy, the front, the winner labelled."""
    winner = (document["cost_efficiency_winner"] or {}).get("config")
    metric = Metric(**document["metric"])
    points = [{"name": r["config"], "cost": r["cost"], "values": r["metric"]["values"], "pareto": r["pareto"],
               "metric": r["metric"]} for r in document["results"]]
    try:
        return str(plots.pareto_plot(collection.sweep_dir / "pareto.png", points, winner, heading, metric))
    except OSError as e:
        collection.problems.append(f"pareto.png not written: {e}")
        collection.unwritten.append(f"pareto.png not written: {e}")
        return None


def _settings(p: PricedPoint) -> list[tuple[str, str]]:
    d = p.point.details
    rows = [("Name", p.point.name), ("Method", d.get("method_name", d.get("method", "?")))]
    for key, label in (("rank", "Rank"), ("alpha", "Alpha"), ("learning_rate", "Learning Rate"),
                       ("batch_size", "Batch Size"), ("epochs", "Epochs"), ("distill", "Distillation"),
                       ("student", "Student"), ("trainable_params", "Trainable Parameters")):
        if d.get(key) is not None:
            value = d[key]
            rows.append((label, f"{value:g}" if isinstance(value, float) else f"{value:,}"
                         if isinstance(value, int) else str(value)))
    return rows


def _alternative(rec: Recommendation, p: PricedPoint, label: str) -> dict[str, Any]:
    return {"config": p.point.name, "cost": p.cost, "accuracy": p.point.accuracy, "hours": p.hours,
            "memory_gb": p.point.memory_gb, "why": label, "excluded_by": rec.violations[p.point.name],
            "metric": p.point.score}


def recommendation_report(analysis: CostPerformanceAnalysis, rec: Recommendation,
                          source: dict[str, Any]) -> tuple[dict[str, Any], str]:
    cost_model, metric = analysis.cost_model, rec.metric
    better = "higher accuracy" if metric == ACCURACY else f"better {metric.name}"
    alternatives = [_alternative(rec, p, why) for p, why in ((rec.cheaper, "budget-friendly"),
                                                             (rec.more_accurate, better)) if p]
    document: dict[str, Any] = {
        "analysis": "recommend",
        "metric": metric.as_dict(),
        "constraints": {f.name: getattr(rec.constraints, f.name) for f in fields(rec.constraints)},
        "gpu": cost_model.as_dict(),  # the --gpu choice, priced
        "pricing": pricing(analysis, rec.priced),
        "recommended": point_entry(rec.best) if rec.best else None,
        "rationale": rec.rationale,
        "alternatives": alternatives,
        "significance_vs_cheaper": rec.vs_cheaper,
        "selected_by": rec.selected_by,
        "tie_rule": selection.tie_rule(metric) + " (the table's order: cheaper first)",
        "candidates": [{**point_entry(p), "excluded_by": rec.violations[p.point.name]} for p in rec.priced],
        "nearest": point_entry(rec.nearest) if rec.nearest else None,
        "source": source,
    }
    priced_on = f"GPU: {cost_model.name} @ ${cost_model.cost_per_hour:.2f}/hr"
    limits = ", ".join(rec.constraints.described(metric) + [priced_on])
    lines = [title(f"Recommendations ({limits})"), ""]
    if rec.best is None:
        lines.append("No configuration meets every constraint:")
        lines += [f"  - {p.point.name}: {'; '.join(rec.violations[p.point.name])}" for p in rec.priced]
        if rec.nearest:
            n = rec.nearest
            lines += ["", (f"Nearest: {n.point.name}: {money(n.cost)}, {_short(n, metric)}, {n.hours:.3g} h, "
                           f"{n.point.memory_gb:.3g} GB ({'; '.join(rec.violations[n.point.name])})")]
    else:
        b = rec.best
        std = f" ± {b.point.score_std:.3f}" if b.point.score_std is not None else ""
        chosen = (f"; chosen on validation {metric.name} {b.point.val_score:.3f}"
                  if rec.selected_by == metric.val_name else "")
        also = [] if metric == ACCURACY else [f"  Accuracy: {b.point.accuracy:.3f} (test)"]
        lines += ["Recommended Configuration:", *(f"  {k}: {v}" for k, v in _settings(b)), "",
                  "Expected Results:",
                  f"  {metric_headers(metric)[0]}: {b.point.score:.3f}{std} (n={len(b.point.scores)}, test{chosen})",
                  *also,
                  f"  Training Time: {b.hours:.3g} hours",
                  f"  Cost: {money(b.cost)}",
                  f"  Memory: {b.point.memory_gb:.3g} GB", "",
                  "Rationale:", *(f"  - {line}" for line in rec.rationale)]
        if alternatives:
            lines += ["", "Alternative Options:"]
            for i, a in enumerate(alternatives, 1):
                excluded = f"; excluded: {'; '.join(a['excluded_by'])}" if a["excluded_by"] else ""
                lines.append(f"  {i}. {a['config']}: {money(a['cost'])}, {_short_value(a['metric'], metric)} "
                             f"({a['why']}{excluded})")
    lines += ["", *_pricing_lines(document), f"Source: {source['description']}"]
    return document, "\n".join(lines)
