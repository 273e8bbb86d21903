"""The spec's report for each sweep command: temperature/alpha, compare, ablation.

Each chooses its best on the deciding metric's validation value (aggregate/selection.py; the metric and its
direction: aggregate/metrics.py) and reports and tests its test value. The JSON names the metric
(``"metric": {"name", "lower_is_better"}``), keeps every accuracy field, and adds the metric's statistics
under ``metric`` in each row and in ``best``.
"""

from __future__ import annotations

from typing import Any

from entrenar_bench.aggregate import stats
from entrenar_bench.aggregate.ceiling import ceiling, ceiling_line
from entrenar_bench.aggregate.collect import Collection
from entrenar_bench.aggregate.metrics import Metric
from entrenar_bench.aggregate.outcomes import SPENT_HEADERS, best_fields, outcomes, spent_row, winner_caveat
from entrenar_bench.aggregate.report import (
    TEST_NAMES, best_and_runner_up, best_entry, best_text, closing_lines, failures, family_test, figures, fmt,
    group_summaries, metric_headers, metric_samples, n_text, notes, outcome_text, own_samples_lines, p_is, p_text,
    pair_text, rows_for, runner_up_entry, selection_line, significance_lines, significance_text, table, title,
)
from entrenar_bench.aggregate.teacher import teacher_reference
from entrenar_bench.run.ablation import COMPONENTS, FULL, describe, parse_ablate
from entrenar_bench.distill.settings import STRATEGY_ORDER
from entrenar_bench.sweep.commands import ParameterSweep, SweepCommand



def _value(x: float) -> str:
    """1.0, 1.5, 0.25: at least one decimal, no float noise."""
    return f"{x:.1f}" if x == round(x, 1) else f"{x:g}"


def _group_value(collection: Collection, group: str, key: str) -> Any:
    rows = collection.runs[(collection.runs["group"] == group) & collection.runs[f"cfg:{key}"].notna()]
    return rows[f"cfg:{key}"].iloc[0]


def _vs(best_group: str, groups: dict[str, list[float]]) -> list[dict]:
    """Each other group against the best, Holm-adjusted across those comparisons."""
    others = [(best_group, g) for g in groups if g != best_group]
    return stats.pairwise(groups, pairs=others) if others else []


def _row(s: dict[str, Any]) -> dict[str, Any]:
    """The JSON result fields every sweep shares (test accuracy, and the validation accuracy that chose; the
    deciding metric's test mean, std, CI and validation mean under ``metric``)."""
    m = s["metric"]
    return {"accuracy": s["accuracy"]["mean"], "std_dev": s["accuracy"]["std"], "ci95": s["accuracy"]["ci95"],
            "n": s["n"], "teachers": len(s["teachers"]), "val_accuracy": s["val_accuracy"]["mean"],
            "val_std_dev": s["val_accuracy"]["std"], "loss": s["loss"]["mean"], "loss_std_dev": s["loss"]["std"],
            "time_s": s["time_s"]["mean"], "failed": s["failed"] + s["missing"],
            "metric": {"name": m["name"], "mean": m["mean"], "std_dev": m["std"], "ci95": m["ci95"],
                       "val_mean": s["val_metric"]["mean"]},
            "metrics": {name: {"mean": d["mean"], "std_dev": d["std"], "ci95": d["ci95"]}
                        for name, d in s["recorded"].items()},
            **spent_row(s)}


def _runner_up_line(test: dict, best_label: str, runner_label: str, metric: Metric, family: int) -> str:
    """``T = 2 won against the runner-up, T = 4 (p = …, Holm): …``, or selected on validation, not significantly
    different (report.outcome_text), with the family's test of best − runner-up."""
    return (f"Best vs runner-up: {best_label} {outcome_text(test, runner_label)}: {pair_text(test)} in test "
            f"{metric.name} ({metric.direction}), {TEST_NAMES[test['test']]}, Holm over {family}")


def _param_sweep_document(collection: Collection, sweep_type: str, range_info: dict | None, summaries: list[dict],
                          results: list[dict], groups: dict, best: dict, runner: dict | None, test: dict | None,
                          vs_best: list[dict], reference: Any) -> dict[str, Any]:
    """The JSON report of a temperature or alpha sweep (the spec's fields first, then what backs them)."""
    metric = collection.metric
    spread = stats.describe([r["accuracy"] for r in results if r["accuracy"] is not None])
    metric_spread = stats.describe([r["metric"]["mean"] for r in results if r["metric"]["mean"] is not None])
    values = [s["value"] for s in summaries]
    range_info = range_info or {"start": min(values), "end": max(values),
                                "step": (values[1] - values[0]) if len(values) > 1 else None}
    return {
        "sweep_type": sweep_type,
        "metric": metric.as_dict(),
        "range": range_info,
        "runs": max((s["n"] for s in summaries), default=0),
        "ceiling": ceiling(collection),
        "results": results,
        "best": {sweep_type: best.get("value"), **best_entry(best, metric),
                 "runner_up": {sweep_type: runner["value"], "accuracy": runner["accuracy"]["mean"],
                               "val_accuracy": runner["val_accuracy"]["mean"], "metric": runner["metric"]["mean"],
                               "val_metric": runner["val_metric"]["mean"]} if runner else None,
                 "vs_runner_up": test, "significantly_better_than_runner_up": bool(test and test["won"]),
                 "outcome": outcome_text(test, _value(runner["value"])) if test else None},
        f"best_{sweep_type}": best.get("value"),
        "statistical_analysis": {
            "mean_accuracy": spread["mean"],  # mean over the sweep's points of their mean accuracy
            "variance": (spread["std"] ** 2) if spread["std"] is not None else None,  # between-point variance
            "mean_metric": metric_spread["mean"],  # the same two for the deciding metric
            "metric_variance": (metric_spread["std"] ** 2) if metric_spread["std"] is not None else None,
            "anova": stats.anova(groups),
            "vs_best": vs_best,
            "test": "welch", "correction": "holm",
        },
        "teacher": reference,
        "notes": notes(summaries),
        "sweep_dir": str(collection.sweep_dir),
        "failures": failures(collection),
        "problems": collection.problems,
    }


def param_sweep_report(collection: Collection, command: ParameterSweep, range_info: dict | None = None
                       ) -> tuple[dict, str]:
    """The report of a parameter sweep (temperature, alpha, or any registered ParameterSweep)."""
    sweep_type, key, header, xlabel, short = command.name, command.key, command.header, command.label, command.short
    metric = collection.metric
    reference = teacher_reference(collection, metric)
    groups, _ = metric_samples(collection)
    summaries = group_summaries(collection)
    for s in summaries:
        s["value"] = float(_group_value(collection, s["group"], key))
    summaries.sort(key=lambda s: s["value"])
    best, runner, _ = best_and_runner_up(summaries, [], metric)
    found = outcomes(collection, summaries, reference)
    results = [{sweep_type: s["value"], **_row(s)} for s in summaries]
    values = [s["value"] for s in summaries]
    vs_best = _vs(best["group"], groups) if best else []
    test = family_test(vs_best, best["group"], runner["group"], metric) if runner else None
    document = _param_sweep_document(collection, sweep_type, range_info, summaries, results, groups, best, runner,
                                     test, vs_best, reference)
    document["best"].update(best_fields(found, best.get("group")))
    document.update(found.document, notes=document["notes"] + found.notes)
    heading = f"{sweep_type.capitalize()} Sweep Results"
    labels = [_value(v) for v in values]
    if summaries:
        document.update(figures(collection, summaries, sweep_type, heading, reference, labels, values, xlabel))
    first, others = metric_headers(metric)
    headers = [header, first, *others, "Std Dev", "95% CI", "n", metric.val_header, "Time (s)", *SPENT_HEADERS]
    lines = [title(heading), "", table(headers, rows_for(headers, header, summaries, labels, reference, metric)), ""]
    lines += ceiling_line(document["ceiling"])
    lines += own_samples_lines(summaries, labels)
    lines += found.lines
    if best:
        lines += [f"Best {sweep_type}: {_value(best['value'])} ({best_text(best, metric, spread=True)})",
                  selection_line(best, metric), *winner_caveat(found)]
    if test:
        lines.append(_runner_up_line(test, f"{short} = {_value(best['value'])}", f"{short} = {_value(runner['value'])}",
                                     metric, len(vs_best)))
    differ = [p["b"] for p in vs_best if p.get("p_adjusted") is not None and p["p_adjusted"] < 0.05]
    if vs_best:
        named = ", ".join(_value(float(_group_value(collection, g, key))) for g in differ)
        lines.append(f"Against the best (Welch's t-test, Holm over {len(vs_best)}): {len(differ)} of {len(vs_best)} "
                     f"points differ significantly{': ' + short + ' = ' + named if differ else ''} "
                     f"({n_text(summaries)})")
    a = document["statistical_analysis"]["anova"]
    if a:
        lines.append(f"One-way ANOVA across {len(results)} points: F = {fmt(a['F'], 2)}, {p_is(a['p_value'])}")
    lines += ["", *closing_lines(document, collection)]
    return document, "\n".join(lines)


def _strategy_order(summary: dict) -> tuple:
    label = summary["group"]
    return (STRATEGY_ORDER.index(label) if label in STRATEGY_ORDER else len(STRATEGY_ORDER), label)


def compare_report(collection: Collection) -> tuple[dict, str]:
    metric = collection.metric
    reference = teacher_reference(collection, metric)
    groups, seeds = metric_samples(collection)
    summaries = group_summaries(collection, sort_key=_strategy_order)
    pairs = stats.pairwise(groups, seeds)
    means = {s["group"]: s["metric"]["mean"] for s in summaries}
    best, runner, test = best_and_runner_up(summaries, pairs, metric)
    found = outcomes(collection, summaries, reference)
    results = [{"strategy": s["group"], **_row(s), "memory_gb": s["peak_memory_gb"]["mean"]} for s in summaries]
    significance = significance_text(pairs, means, n_text(summaries), metric=metric)
    document = {
        "sweep_type": "compare",
        "metric": metric.as_dict(),
        "strategies": [s["group"] for s in summaries],
        "results": results,
        "best": {"strategy": best.get("group"), **best_entry(best, metric), **runner_up_entry(runner, test),
                 **best_fields(found, best.get("group"))},
        "pairs": pairs,
        "significant": [line[2:].split(": ")[0] for line in significance_lines(pairs, means, metric)],
        "statistical_analysis": {"anova": stats.anova(groups), "correction": "holm", "test": "welch"},
        "memory_kind": _memory_kind(collection),
        "ceiling": ceiling(collection),
        "teacher": reference,
        "notes": notes(summaries) + found.notes,
        **found.document,
        "sweep_dir": str(collection.sweep_dir),
        "failures": failures(collection),
        "problems": collection.problems,
    }
    if summaries:
        document.update(figures(collection, summaries, "compare", "Strategy comparison", reference))
    first, others = metric_headers(metric)
    headers = ["Strategy", first, *others, "Time (s)", *SPENT_HEADERS, "Memory (GB)", "Std Dev", "95% CI", "n",
               metric.val_header]
    lines = [title("Strategy Comparison Results"), "",
             table(headers, rows_for(headers, "Strategy", summaries, [s["group"] for s in summaries], reference,
                                     metric))]
    lines += ceiling_line(document["ceiling"])
    lines += own_samples_lines(summaries, [s["group"] for s in summaries])
    lines += found.lines
    lines += significance
    if best:
        lines += ["", f"Best strategy: {best['group']} ({best_text(best, metric)})", selection_line(best, metric)]
        if test:
            lines.append(f"{best['group']} {outcome_text(test, runner['group'])}.")
        lines += winner_caveat(found)
    lines.append(f"\nTime: mean training wall time per run. Tokens: training target tokens per run; FLOPs: "
                 f"their estimate (student 6·N·D + teacher + generation, run/compute.py). Memory: "
                 f"{document['memory_kind']}.")
    lines += closing_lines(document, collection)
    return document, "\n".join(lines)


def _memory_kind(collection: Collection) -> str:
    devices = set(collection.completed["device"].dropna())
    if any(str(d).startswith("cuda") for d in devices):
        return "peak CUDA memory allocated (torch.cuda.max_memory_allocated)"
    return "peak growth of the process's resident memory during training (CPU)"


def _ablation_cells(r: dict[str, Any], delta: str) -> dict[str, str]:
    if not r["removed"]:
        return {delta: "baseline", "95% CI of Δ": "", "Hedges' g": "", "p vs full (Holm)": "reference"}
    p = r["vs_full"] or {}
    ci = p.get("ci95") or [None, None]
    return {delta: "—" if r["delta_metric"] is None else f"{r['delta_metric']:+.3f}",
            "95% CI of Δ": "—" if ci[0] is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]",
            "Hedges' g": "—" if p.get("hedges_g") is None else f"{p['hedges_g']:+.2f}",
            "p vs full (Holm)": p_text(p.get("p_adjusted")) + (" *" if r["significant"] else "")}


def _delta(s: dict[str, Any], full: dict[str, Any] | None, key: str) -> float | None:
    """The configuration's test mean minus the full model's (None for the full model itself)."""
    if not full or not s["removed"] or s[key]["mean"] is None or full[key]["mean"] is None:
        return None
    return s[key]["mean"] - full[key]["mean"]


def ablation_report(collection: Collection) -> tuple[dict, str]:
    metric = collection.metric
    reference = teacher_reference(collection, metric)
    groups, _ = metric_samples(collection)
    summaries = group_summaries(collection)
    for s in summaries:
        s["removed"] = parse_ablate(str(_group_value(collection, s["group"], "ablate")))
        s["strategy"] = str(_group_value(collection, s["group"], "distill.name"))
    order = list(COMPONENTS)
    summaries.sort(key=lambda s: (len(s["removed"]), [order.index(n) for n in s["removed"]]))
    full = next((s for s in summaries if not s["removed"]), None)
    versus = {}
    if full:
        others = [(s["group"], full["group"]) for s in summaries if s["removed"] and s["n"]]
        versus = {p["a"]: p for p in stats.pairwise(groups, pairs=others)} if others else {}
    best, _, _ = best_and_runner_up(summaries, [], metric)
    found = outcomes(collection, summaries, reference)
    results = []
    for s in summaries:
        p = versus.get(s["group"])
        results.append({
            "configuration": describe(s["removed"], s["strategy"]),
            "removed": s["removed"],
            "ablate": "+".join(s["removed"]) or FULL,
            **_row(s),
            "delta_accuracy": _delta(s, full, "accuracy"),
            "delta_metric": _delta(s, full, "metric"),
            "vs_full": p,
            "significant": bool(p and p["p_adjusted"] is not None and p["p_adjusted"] < 0.05),
        })
    labels = [r["configuration"] for r in results]
    document = {"sweep_type": "ablation", "metric": metric.as_dict(),
                "baseline": describe([], full["strategy"]) if full else None, "results": results,
                "best": {"configuration": describe(best["removed"], best["strategy"]), **best_entry(best, metric)}
                if best else None,
                "statistical_analysis": {"anova": stats.anova(groups), "test": "welch", "correction": "holm"},
                "teacher": reference, "notes": notes(summaries) + found.notes, **found.document,
                "sweep_dir": str(collection.sweep_dir), "failures": failures(collection),
                "problems": collection.problems}
    if document["best"]:
        document["best"].update(best_fields(found, best.get("group")))
    if summaries:
        document.update(figures(collection, summaries, "ablation", "Ablation study", reference, labels))
    first, _ = metric_headers(metric)
    delta = f"Δ {first}"
    headers = ["Configuration", first, delta, "95% CI of Δ", "Hedges' g", "p vs full (Holm)", "Std Dev", "95% CI", "n",
               *SPENT_HEADERS]
    rows = rows_for(headers, "Configuration", summaries, labels, reference, metric)
    for row, r in zip(rows, results):
        cells = _ablation_cells(r, delta)
        row[:] = [cells.get(h, cell) for h, cell in zip(headers, row)]
    lines = [title("Ablation Study Results"), "", table(headers, rows), "",
             f"Δ: test {metric.name} minus the full model's ({metric.direction}). * Holm-adjusted Welch p < 0.05 "
             "against the full model."]
    lines += found.lines
    if best:
        lines += [f"Best by validation {metric.name}: {document['best']['configuration']} ({metric.name}: "
                  f"{best['metric']['mean']:.3f} on test)", selection_line(best, metric), *winner_caveat(found)]
    lines += ["", *closing_lines(document, collection)]
    return document, "\n".join(lines)


def command_report(command: SweepCommand, collection: Collection, range_info: dict | None = None
                   ) -> tuple[dict, str]:
    """The report a registered sweep command names (``command.report``)."""
    if command.report == "parameter":
        return param_sweep_report(collection, command, range_info)
    return {"compare": compare_report, "ablation": ablation_report}[command.report](collection)
