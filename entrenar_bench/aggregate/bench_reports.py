"""The spec's report for each sweep command: temperature/alpha, compare, ablation."""

from __future__ import annotations

from typing import Any

from entrenar_bench.aggregate import plots, stats
from entrenar_bench.aggregate.collect import Collection
from entrenar_bench.aggregate.report import (
    _fmt, accuracy_samples, failure_text, failures, group_summaries, significance_text,
)
from entrenar_bench.aggregate.text import table, title
from entrenar_bench.distill.ablation import COMPONENTS, FULL, describe, parse_ablate
from entrenar_bench.distill.settings import STRATEGY_ORDER

PARAM_SWEEPS = {
    # sweep_type: (config key, table header, plot label)
    "temperature": ("distill.temperature", "Temp", "temperature T"),
    "alpha": ("distill.alpha", "Alpha", "alpha"),
}


def _value(x: float) -> str:
    """1.0, 1.5, 0.25: at least one decimal, no float noise."""
    return f"{x:.1f}" if x == round(x, 1) else f"{x:g}"


def _group_value(collection: Collection, group: str, key: str) -> Any:
    rows = collection.runs[(collection.runs["group"] == group) & collection.runs[f"cfg:{key}"].notna()]
    return rows[f"cfg:{key}"].iloc[0]


def _best(summaries: list[dict], groups: dict[str, list[float]]) -> tuple[dict, dict | None, dict | None]:
    """Best group by mean accuracy, the runner-up, and Welch's test between them."""
    ranked = sorted((s for s in summaries if s["n"]), key=lambda s: -s["accuracy"]["mean"])
    if not ranked:
        return {}, None, None
    best = ranked[0]
    if len(ranked) < 2:
        return best, None, None
    runner = ranked[1]
    test = None
    if best["n"] >= 2 and runner["n"] >= 2:
        test = stats.welch(groups[best["group"]], groups[runner["group"]])
        test["significant"] = test["p_value"] is not None and test["p_value"] < 0.05
    return best, runner, test


def _vs(best_group: str, groups: dict[str, list[float]]) -> list[dict]:
    """Each other group against the best, Holm-adjusted across those comparisons."""
    others = [(best_group, g) for g in groups if g != best_group]
    return stats.pairwise(groups, pairs=others) if others else []


def param_sweep_report(collection: Collection, sweep_type: str, range_info: dict | None = None) -> tuple[dict, str]:
    key, header, xlabel = PARAM_SWEEPS[sweep_type]
    groups, _ = accuracy_samples(collection)
    summaries = group_summaries(collection)
    for s in summaries:
        s["value"] = float(_group_value(collection, s["group"], key))
    summaries.sort(key=lambda s: s["value"])
    best, runner, test = _best(summaries, groups)
    results = [{sweep_type: s["value"], "accuracy": s["accuracy"]["mean"], "loss": s["loss"]["mean"],
                "std_dev": s["accuracy"]["std"], "n": s["n"], "ci95": s["accuracy"]["ci95"],
                "loss_std_dev": s["loss"]["std"], "time_s": s["time_s"]["mean"], "failed": s["failed"] + s["missing"]}
               for s in summaries]
    point_means = [r["accuracy"] for r in results if r["accuracy"] is not None]
    spread = stats.describe(point_means)
    values = [s["value"] for s in summaries]
    range_info = range_info or {"start": min(values), "end": max(values),
                                "step": (values[1] - values[0]) if len(values) > 1 else None}
    document: dict[str, Any] = {
        "sweep_type": sweep_type,
        "range": range_info,
        "runs": max((s["n"] for s in summaries), default=0),
        "results": results,
        "best": {sweep_type: best.get("value"), "accuracy": best.get("accuracy", {}).get("mean"),
                 "std_dev": best.get("accuracy", {}).get("std"),
                 "runner_up": {sweep_type: runner["value"], "accuracy": runner["accuracy"]["mean"]} if runner else None,
                 "vs_runner_up": test,
                 "significantly_better_than_runner_up": bool(test and test["significant"])},
        f"best_{sweep_type}": best.get("value"),
        "statistical_analysis": {
            "mean_accuracy": spread["mean"],  # mean over the sweep's points of their mean accuracy
            "variance": (spread["std"] ** 2) if spread["std"] is not None else None,  # between-point variance
            "anova": stats.anova(groups),
            "vs_best": _vs(best["group"], groups) if best else [],
        },
        "sweep_dir": str(collection.sweep_dir),
        "failures": failures(collection),
        "problems": collection.problems,
    }
    heading = f"{sweep_type.capitalize()} Sweep Results"
    rows = [[_value(r[sweep_type]), _fmt(r["accuracy"]), _fmt(r["loss"]), "±" + _fmt(r["std_dev"])] for r in results]
    lines = [title(heading), "", table([header, "Accuracy", "Loss", "Std Dev"], rows), ""]
    if best:
        lines.append(f"Best {sweep_type}: {_value(best['value'])} (accuracy: {best['accuracy']['mean']:.3f})")
    if test:
        verdict = "significant" if test["significant"] else "not significant"
        lines.append(f"Best vs runner-up ({_value(runner['value'])}): {test['mean_diff']:+.4f}, "
                     f"Welch p = {test['p_value']:.3g} ({verdict} at 0.05)")
    a = document["statistical_analysis"]["anova"]
    if a:
        lines.append(f"One-way ANOVA across {len(results)} points: F = {_fmt(a['F'], 2)}, p = {a['p_value']:.3g}")
    lines.append(f"Runs per point: {', '.join(sorted({str(r['n']) for r in results}))}; sweep: {collection.sweep_dir}")
    if len(summaries) > 0 and best:
        path = plots.line_plot(collection.sweep_dir / f"{sweep_type}.png", values, summaries, xlabel, heading)
        document["plot"] = str(path)
        lines.append(f"Plot: {path}")
    lines += failure_text(document["failures"], collection.problems)
    return document, "\n".join(lines)


def _strategy_order(summary: dict) -> tuple:
    label = summary["group"]
    return (STRATEGY_ORDER.index(label) if label in STRATEGY_ORDER else len(STRATEGY_ORDER),
            -summary["accuracy"]["mean"])


def compare_report(collection: Collection) -> tuple[dict, str]:
    groups, seeds = accuracy_samples(collection)
    summaries = group_summaries(collection, sort_key=_strategy_order)
    pairs = stats.pairwise(groups, seeds)
    means = {s["group"]: s["accuracy"]["mean"] for s in summaries}
    best, runner, test = _best(summaries, groups)
    results = [{"strategy": s["group"], "accuracy": s["accuracy"]["mean"], "loss": s["loss"]["mean"],
                "std_dev": s["accuracy"]["std"], "ci95": s["accuracy"]["ci95"], "n": s["n"],
                "time_s": s["time_s"]["mean"], "memory_gb": s["peak_memory_gb"]["mean"],
                "failed": s["failed"] + s["missing"]} for s in summaries]
    document = {
        "sweep_type": "compare",
        "strategies": [s["group"] for s in summaries],
        "results": results,
        "best": {"strategy": best.get("group"), "accuracy": best.get("accuracy", {}).get("mean"),
                 "vs_runner_up": test, "significantly_better_than_runner_up": bool(test and test["significant"])},
        "pairs": pairs,
        "significant": [line[2:] for line in significance_text(pairs, means, "")[2:] if " > " in line],
        "statistical_analysis": {"anova": stats.anova(groups), "correction": "holm", "test": "welch"},
        "memory_kind": _memory_kind(collection),
        "sweep_dir": str(collection.sweep_dir),
        "failures": failures(collection),
        "problems": collection.problems,
    }
    rows = [[r["strategy"], _fmt(r["accuracy"]), _fmt(r["loss"]), _fmt(r["time_s"], 1), _fmt(r["memory_gb"], 3),
             "±" + _fmt(r["std_dev"]), str(r["n"])] for r in results]
    lines = [title("Strategy Comparison Results"), "",
             table(["Strategy", "Accuracy", "Loss", "Time (s)", "Memory (GB)", "Std Dev", "n"], rows)]
    lines += significance_text(pairs, means, f"n = {', '.join(sorted({str(r['n']) for r in results}))} per strategy")
    lines.append(f"\nTime: mean training wall time per run. Memory: {document['memory_kind']}.")
    if summaries:
        path = plots.bar_plot(collection.sweep_dir / "compare.png", [s["group"] for s in summaries], summaries,
                              "Strategy comparison")
        document["plot"] = str(path)
        lines.append(f"Plot: {path}")
    lines.append(f"Sweep: {collection.sweep_dir}")
    lines += failure_text(document["failures"], collection.problems)
    return document, "\n".join(lines)


def _memory_kind(collection: Collection) -> str:
    devices = set(collection.completed["device"].dropna())
    if any(str(d).startswith("cuda") for d in devices):
        return "peak CUDA memory allocated (torch.cuda.max_memory_allocated)"
    return "peak growth of the process's resident memory during training (CPU)"


def ablation_report(collection: Collection) -> tuple[dict, str]:
    groups, _ = accuracy_samples(collection)
    summaries = group_summaries(collection)
    for s in summaries:
        s["removed"] = parse_ablate(str(_group_value(collection, s["group"], "ablate")))
    order = list(COMPONENTS)
    summaries.sort(key=lambda s: (len(s["removed"]), [order.index(n) for n in s["removed"]]))
    full = next((s for s in summaries if not s["removed"]), None)
    versus = {}
    if full:
        others = [(s["group"], full["group"]) for s in summaries if s["removed"] and s["n"]]
        versus = {p["a"]: p for p in stats.pairwise(groups, pairs=others)} if others else {}
    results = []
    for s in summaries:
        p = versus.get(s["group"])
        results.append({
            "configuration": describe(s["removed"]),
            "removed": s["removed"],
            "ablate": "+".join(s["removed"]) or FULL,
            "accuracy": s["accuracy"]["mean"], "std_dev": s["accuracy"]["std"], "n": s["n"],
            "delta_accuracy": None if not full or not s["removed"] or s["accuracy"]["mean"] is None
            else s["accuracy"]["mean"] - full["accuracy"]["mean"],
            "vs_full": p,
            "significant": bool(p and p["p_adjusted"] is not None and p["p_adjusted"] < 0.05),
        })
    document = {"sweep_type": "ablation", "baseline": "Full model", "results": results,
                "statistical_analysis": {"anova": stats.anova(groups), "test": "welch", "correction": "holm"},
                "sweep_dir": str(collection.sweep_dir), "failures": failures(collection),
                "problems": collection.problems}
    rows = []
    for r in results:
        if not r["removed"]:
            delta, sig = "baseline", ""
        else:
            delta = "n/a" if r["delta_accuracy"] is None else f"{r['delta_accuracy']:+.3f}"
            padj = r["vs_full"]["p_adjusted"] if r["vs_full"] else None
            sig = "n/a" if padj is None else f"{padj:.3g}{' *' if r['significant'] else ''}"
        rows.append([r["configuration"], _fmt(r["accuracy"]), delta, sig, "±" + _fmt(r["std_dev"]), str(r["n"])])
    lines = [title("Ablation Study Results"), "",
             table(["Configuration", "Accuracy", "Δ Accuracy", "p vs full (Holm)", "Std Dev", "n"], rows), "",
             "* Holm-adjusted Welch p < 0.05 against the full model."]
    if summaries:
        path = plots.bar_plot(collection.sweep_dir / "ablation.png", [r["configuration"] for r in results],
                              summaries, "Ablation study")
        document["plot"] = str(path)
        lines.append(f"Plot: {path}")
    lines.append(f"Sweep: {collection.sweep_dir}")
    lines += failure_text(document["failures"], collection.problems)
    return document, "\n".join(lines)
