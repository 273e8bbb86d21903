"""Reports built from a Collection: per-group statistics, pairwise tests, and the spec's layouts."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from entrenar_bench.aggregate import stats
from entrenar_bench.aggregate.collect import Collection
from entrenar_bench.aggregate.text import table, title

SIGNIFICANCE = 0.05
METRICS = ("accuracy", "loss", "time_s", "peak_memory_gb")


def group_summaries(collection: Collection, sort_key=None) -> list[dict[str, Any]]:
    """One entry per group with a completed run: label, n, failed/missing counts, describe() of each metric."""
    runs = collection.runs
    summaries = []
    for label, rows in runs.groupby("group", sort=False):
        done = rows[rows["status"] == "completed"]
        entry: dict[str, Any] = {
            "group": str(label),
            "n": len(done),
            "failed": int((rows["status"] == "failed").sum()),
            "missing": int((rows["status"] == "missing").sum()),
            "seeds": sorted(int(s) for s in done["seed"].dropna()),
        }
        for metric in METRICS:
            values = pd.to_numeric(done[metric], errors="coerce").dropna().tolist() if metric in done else []
            entry[metric] = stats.describe(values)
        summaries.append(entry)
    summaries = [s for s in summaries if s["n"]]  # groups with no completed run appear under failures only
    return sorted(summaries, key=sort_key) if sort_key else summaries


def accuracy_samples(collection: Collection) -> tuple[dict[str, list[float]], dict[str, list[int]]]:
    done = collection.completed
    groups, seeds = {}, {}
    for label, rows in done.groupby("group", sort=False):
        groups[str(label)] = rows["accuracy"].astype(float).tolist()
        seeds[str(label)] = rows["seed"].astype(int).tolist()
    return groups, seeds


def failures(collection: Collection) -> list[dict[str, Any]]:
    """Every run that did not complete, with why; never silently dropped."""
    out = []
    for _, row in collection.not_completed.iterrows():
        out.append({
            "job": row.get("job"),
            "status": row["status"],
            "overrides": row.get("overrides") or "",
            "error": row.get("error") if isinstance(row.get("error"), str) else None,
        })
    return out


def significance_lines(pairs: list[dict[str, Any]], means: dict[str, float]) -> list[str]:
    """The spec's ``- progressive > kd`` lines: Holm-adjusted p < 0.05 only, ordered by mean."""
    winners = []
    for p in pairs:
        if p.get("p_adjusted") is not None and p["p_adjusted"] < SIGNIFICANCE:
            hi, lo = (p["a"], p["b"]) if means[p["a"]] >= means[p["b"]] else (p["b"], p["a"])
            winners.append((means[hi], means[lo], f"- {hi} > {lo}"))
    return [line for *_, line in sorted(winners, key=lambda w: (-w[0], -w[1]))]


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def failure_text(fails: list[dict[str, Any]], problems: list[str]) -> list[str]:
    lines = []
    if fails:
        lines.append(f"\nRuns not completed: {len(fails)}")
        lines += [f"- [{f['status']}] {f['overrides']}: {f['error'] or ''}".rstrip(": ") for f in fails]
    if problems:
        lines.append("\nProblems:")
        lines += [f"- {p}" for p in problems]
    return lines


def significance_text(pairs: list[dict[str, Any]], means: dict[str, float], n_label: str) -> list[str]:
    lines = ["", f"Statistical significance (p < {SIGNIFICANCE}, Welch's t-test, Holm-adjusted):"]
    found = significance_lines(pairs, means)
    if found:
        return lines + found
    mdes = [p["mde_80"] for p in pairs if p.get("mde_80")]
    detail = f"; differences below about {max(mdes):.3f} cannot be ruled out at 80% power" if mdes else ""
    return lines + [f"- no pair differs significantly ({n_label}{detail})"]


def generic_report(collection: Collection, test: str = "welch") -> tuple[dict[str, Any], str]:
    """Any sweep: groups by resolved config minus seed; all pairs Holm-adjusted; one-way ANOVA."""
    summaries = group_summaries(collection, sort_key=lambda s: -(s["accuracy"]["mean"] or -1))
    groups, seeds = accuracy_samples(collection)
    pairs = stats.pairwise(groups, seeds, test=test)
    fails = failures(collection)
    document = {
        "sweep_dir": str(collection.sweep_dir),
        "group_keys": collection.group_keys,
        "groups": summaries,
        "pairs": pairs,
        "anova": stats.anova(groups),
        "test": test,
        "completed": len(collection.completed),
        "failures": fails,
        "problems": collection.problems,
    }
    rows = [[s["group"], str(s["n"]), _fmt(s["accuracy"]["mean"], 4), "±" + _fmt(s["accuracy"]["std"], 4),
             f"[{_fmt(s['accuracy']['ci95'][0], 4)}, {_fmt(s['accuracy']['ci95'][1], 4)}]",
             _fmt(s["loss"]["mean"], 4), _fmt(s["time_s"]["mean"], 1), _fmt(s["peak_memory_gb"]["mean"], 3)]
             for s in summaries]
    lines = [title(f"Sweep Results ({collection.sweep_dir.name})"), "",
             f"Grouped by: {', '.join(collection.group_keys) or '(one group)'}", "",
             table(["Group", "n", "Accuracy", "Std Dev", "95% CI", "Loss", "Time (s)", "Memory (GB)"], rows)]
    means = {s["group"]: s["accuracy"]["mean"] for s in summaries}
    if pairs:
        lines += significance_text(pairs, means, f"n = {', '.join(str(s['n']) for s in summaries)}")
    if document["anova"]:
        a = document["anova"]
        lines.append(f"\nOne-way ANOVA: F({a['df'][0]}, {a['df'][1]}) = {_fmt(a['F'], 2)}, p = {a['p_value']:.3g}")
    lines += failure_text(fails, collection.problems)
    return document, "\n".join(lines)
