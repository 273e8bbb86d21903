"""Reports built from a Collection: per-group statistics, pairwise tests, notes, the plain-text layout and
the generic report.

Everything is on the collection's deciding metric (aggregate/metrics.py; accuracy for classification, the
held-out cross-entropy for language models), in its direction. Every table has n, the mean ± std and the
95% CI; every significance line the difference with its 95% CI, Hedges' g and the Holm-adjusted p, under
the test's own name; the best group is chosen on the metric's validation value (aggregate/selection.py)
and reported and tested on its test value. Metrics are summarised over each group's units
(aggregate/units.py: runs, or per-teacher means when the teacher is a factor).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from entrenar_bench.aggregate import plots, selection, stats
from entrenar_bench.aggregate.collect import Collection
from entrenar_bench.aggregate.curves import read_curves
from entrenar_bench.aggregate.metrics import ACCURACY, BEFORE_PREFIX, HEADERS, Metric, recorded_names, tie_breaker
from entrenar_bench.aggregate.outcomes import (
    SPENT, SPENT_HEADERS, best_fields, outcomes, recovery_label, spent_cells, winner_caveat,
)
from entrenar_bench.aggregate.recovery import curve_teacher, read_token_curves, token_band
from entrenar_bench.aggregate.teacher import reference_line, rests_on, teacher_reference
from entrenar_bench.aggregate.units import TEACHER, units
from entrenar_bench.aggregate.usefulness import baselines

SIGNIFICANCE = 0.05
MIN_RUNS = 3  # below this a 95% t-interval is too wide to say much: the report warns
METRICS = ("accuracy", "val_accuracy", "val_loss", "loss", "time_s", "peak_memory_gb", *SPENT)
PER_UNIT = ("accuracy", "val_accuracy", "val_loss")  # summarised over units (per-teacher means with K teachers)
TEST_NAMES = {"welch": "Welch's t-test", "paired": "paired t-test"}
TEACHER_ROW = "teacher (reference)"


def table(headers: list[str], rows: list[list[str]]) -> str:
    """The spec's tables: ``Temp  | Accuracy | ...`` over a ``------|----------`` rule."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]
    fmt = lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(headers), "-|-".join("-" * w for w in widths), *(fmt(r) for r in rows)])


def title(text: str) -> str:
    return f"{text}\n{'=' * len(text)}"


def metric_headers(metric: Metric) -> tuple[str, list[str]]:
    """The deciding metric's column and the other columns every table shows beside it (accuracy, loss)."""
    return metric.header, [h for h in ("Accuracy", "Loss") if h != metric.header]


def group_summaries(collection: Collection, sort_key=None) -> list[dict[str, Any]]:
    """One entry per group with a completed run: label, n (distinct runs), failed/missing counts, seeds,
    teachers, the unit of replication, each run's accuracy (``values``), describe() of each metric, and the
    deciding metric's test and validation describe() (``metric``, ``val_metric``) and run values
    (``metric_values``)."""
    metric = collection.metric
    summaries = []
    for label, rows in collection.runs.groupby("group", sort=False):
        done = rows[rows["status"] == "completed"]
        if done.empty:
            continue  # groups with no completed run appear under failures only
        decides = units(done, metric.column)
        entry: dict[str, Any] = {
            "group": str(label),
            "n": len(decides.runs),
            "failed": int((rows["status"] == "failed").sum()),
            "missing": int((rows["status"] == "missing").sum()),
            "seeds": sorted(int(s) for s in done["seed"].dropna().unique()),
            "teachers": decides.teachers,
            "unit": decides.kind,
            "values": units(done).runs,
        }
        for column in METRICS:
            if column in PER_UNIT:
                values = units(done, column).values
            else:
                values = pd.to_numeric(done[column], errors="coerce").dropna().tolist() if column in done else []
            entry[column] = stats.describe(values)
        entry["metric"] = {**metric.as_dict(), **stats.describe(decides.values)}
        entry["val_metric"] = stats.describe(units(done, metric.val_column).values)
        entry["metric_values"] = decides.runs
        entry["before"] = {c[len(BEFORE_PREFIX):]:
                           stats.describe(pd.to_numeric(done[c], errors="coerce").dropna().tolist())
                           for c in done.columns if c.startswith(BEFORE_PREFIX) and done[c].notna().any()}
        entry["recorded"] = {name: stats.describe(pd.to_numeric(done[Metric(name).column], errors="coerce").dropna()
                                                  .tolist()) for name in recorded_names(done)}
        if decides.kind == TEACHER:
            entry["per_teacher"] = {str(t): v for t, v in zip(decides.ids, decides.values)}
        entry["zero_variance"] = stats.zero_variance(decides.values)
        summaries.append(entry)
    return sorted(summaries, key=sort_key) if sort_key else summaries


OWN_SAMPLES = ("sample_truth_kl", "sample_invalid")  # a language model's own samples, measured against the truth


def own_samples_lines(summaries: list[dict[str, Any]], labels: list[str]) -> list[str]:
    """What the groups' students' own samples are worth (``sample_truth_kl``: the per-token KL to the truth in the
    states they visit; ``sample_invalid``: the share of impossible tokens), where the runs recorded it."""
    lines = []
    for name in OWN_SAMPLES:
        cells = [f"{label}: {fmt(s['recorded'][name]['mean'], 3)} ± {fmt(s['recorded'][name]['std'], 3)}"
                 for s, label in zip(summaries, labels) if s["recorded"].get(name, {}).get("mean") is not None]
        if cells:
            lines.append(f"Own samples, {HEADERS.get(name, name)} (lower is better): {'; '.join(cells)}")
    return lines


def metric_samples(collection: Collection) -> tuple[dict[str, list[float]], dict[str, list[int]]]:
    """Per group: the deciding metric's test value of each unit (run, or teacher), and the unit ids to pair on
    (``seed 0``, ``teacher 1``: a paired test pairs like units only)."""
    groups, seeds = {}, {}
    for label, rows in collection.completed.groupby("group", sort=False):
        u = units(rows, collection.metric.column)
        groups[str(label)], seeds[str(label)] = u.values, [f"{u.kind} {i}" for i in u.ids]
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


def fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def ci_text(ci: list[float | None], digits: int = 3, bounded: bool = True) -> str:
    """A 95% CI; an accuracy's (``bounded``) clipped to [0, 1] (the JSON keeps the t-interval as computed)."""
    if ci[0] is None:
        return "—"
    low, high = (max(0.0, ci[0]), min(1.0, ci[1])) if bounded else (ci[0], ci[1])
    return f"[{fmt(low, digits)}, {fmt(high, digits)}]"


def std_text(std: float | None, digits: int = 3) -> str:
    return "—" if std is None else f"±{std:.{digits}f}"


def p_text(p: float | None) -> str:
    return "< 0.001" if p is not None and p < 0.001 else f"{p:.3f}" if p is not None else "not testable"


def p_is(p: float | None) -> str:
    """``p = 0.018``, ``p < 0.001``, ``p not testable``."""
    text = p_text(p)
    return f"p {text}" if p is None or text.startswith("<") else f"p = {text}"


def pair_text(pair: dict[str, Any], flip: bool = False) -> str:
    """``+0.0074 (95% CI +0.0021 to +0.0127), Hedges' g = 2.31, p = 0.018 (Holm)`` for a − b (b − a if ``flip``)."""
    sign = -1 if flip else 1
    diff = pair.get("mean_diff")
    if pair.get("not_testable"):
        return (f"{sign * diff:+.4f}, " if diff is not None else "") + f"not testable ({pair['not_testable']})"
    low, high = sorted(sign * c for c in pair["ci95"])
    g = pair.get("hedges_g")
    effect = f"Hedges' g = {sign * g:.2f}" if g is not None else "Hedges' g undefined (zero pooled SD)"
    return (f"{sign * diff:+.4f} (95% CI {low:+.4f} to {high:+.4f}), {effect}, "
            f"{p_is(pair.get('p_adjusted', pair.get('p_value')))} (Holm)")


def _significant(pair: dict[str, Any]) -> bool:
    return pair.get("p_adjusted") is not None and pair["p_adjusted"] < SIGNIFICANCE


def significance_lines(pairs: list[dict[str, Any]], means: dict[str, float], metric: Metric = ACCURACY
                       ) -> list[str]:
    """The spec's ``- progressive > kd`` lines, ``>`` meaning better on ``metric`` (a higher accuracy, a lower
    loss): Holm-adjusted p < 0.05 only, best first, each with the difference (better minus worse), its 95% CI,
    Hedges' g and the adjusted p."""
    sign = -1 if metric.lower_is_better else 1  # ordered so that larger is better
    winners = []
    for p in filter(_significant, pairs):
        flip = sign * means[p["a"]] < sign * means[p["b"]]
        hi, lo = (p["b"], p["a"]) if flip else (p["a"], p["b"])
        winners.append((sign * means[hi], sign * means[lo], f"- {hi} > {lo}: {pair_text(p, flip)}"))
    return [line for *_, line in sorted(winners, key=lambda w: (-w[0], -w[1]))]


def _units_text(s: dict[str, Any]) -> str:
    """``3 runs``, ``2 teachers``: how many samples a group's statistics rest on."""
    k = s["metric"]["n"]
    return f"{k} {'teacher' if s['unit'] == TEACHER else 'run'}{'s' if k != 1 else ''}"


def n_text(summaries: list[dict[str, Any]]) -> str:
    """``n = 3 runs per group``, or each group's where they differ (``n = kd: 2 teachers, none: 3 runs``)."""
    counts = {_units_text(s) for s in summaries}
    if len(counts) == 1:
        return f"n = {counts.pop()} per group"
    return "n = " + ", ".join(f"{s['group']}: {_units_text(s)}" for s in summaries)


def significance_text(pairs: list[dict[str, Any]], means: dict[str, float], n_label: str,
                      test: str = "welch", metric: Metric = ACCURACY) -> list[str]:
    """Significant pairs in the spec's form, then the others, each with its numbers."""
    on = "" if metric == ACCURACY else f"on test {metric.name}, {metric.direction}, '>' = better; "
    lines = ["", f"Statistical significance ({on}p < {SIGNIFICANCE}, {TEST_NAMES[test]}, Holm-adjusted over "
                 f"{len(pairs)} pair{'s' if len(pairs) != 1 else ''}; {n_label}):"]
    found = significance_lines(pairs, means, metric)
    if found:
        lines += found
    else:
        mdes = [p["mde_80"] for p in pairs if p.get("mde_80")]
        detail = (f" (this test had 80% power, at Holm's level {pairs[0]['mde_alpha']:.3g}, only for differences "
                  f"above about {max(mdes):.3f})") if mdes else ""
        lines.append(f"- no pair differs significantly{detail}")
    others = [p for p in pairs if not _significant(p)]
    if others:
        lines.append("Not significant:" if found else "Pairs:")
        lines += [f"- {p['a']} vs {p['b']}: {pair_text(p)}" for p in others]
    return lines


def notes(summaries: list[dict[str, Any]]) -> list[str]:
    """Warnings a reader needs beside the numbers: too few runs (or teachers), and zero variance stated as a fact."""
    few: dict[str, list[str]] = {}
    for s in summaries:
        if s["metric"]["n"] < MIN_RUNS:
            few.setdefault(_units_text(s), []).append(s["group"])
    out = [f"warning: {', '.join(groups)} rest{'s' if len(groups) == 1 else ''} on {count}"
           f"{' each' if len(groups) > 1 else ''} (fewer than {MIN_RUNS}): 95% CIs are wide (or undefined) and "
           "tests have little power" for count, groups in few.items()]
    for s in filter(lambda s: s["zero_variance"], summaries):
        out.append(f"zero variance in group {s['group']}: all {_units_text(s)} scored {s['metric']['mean']:.4f}"
                   f"{'' if s['metric']['name'] == 'accuracy' else ' ' + s['metric']['name']}, "
                   "so its 95% CI has zero width")
    return out


def best_and_runner_up(summaries: list[dict[str, Any]], pairs: list[dict[str, Any]], metric: Metric = ACCURACY
                       ) -> tuple[dict, dict | None, dict | None]:
    """The best group and the runner-up by the selection rule (the metric's validation value), and the test of
    their test values taken from ``pairs``, the report's own family (its test, Holm-adjusted over its pairs),
    as best − runner-up (None when the family lacks that pair). Runs that recorded no validation value are
    ranked on the test value, and ``selected_by`` says so."""
    on_val = any(s["val_metric"]["mean"] is not None for s in summaries)
    value, tie = ("val_metric", f"val_{tie_breaker(metric).name}") if on_val else ("metric", tie_breaker(metric).name)
    ranked = selection.rank(summaries, lambda s: s[value]["mean"], lambda s: s[tie]["mean"], metric)
    for s in ranked:
        s["selected_by"] = metric.val_name if on_val else metric.name
    if not ranked:
        return {}, None, None
    if len(ranked) < 2:
        return ranked[0], None, None
    best, runner = ranked[:2]
    return best, runner, family_test(pairs, best["group"], runner["group"], metric)


def family_test(pairs: list[dict[str, Any]], first: str, other: str, metric: Metric = ACCURACY
                ) -> dict[str, Any] | None:
    """The family's test of ``first`` against ``other``, as ``first`` − ``other``, with ``significant``
    (Holm-adjusted p < 0.05) and ``won`` (significant and in ``first``'s favour on ``metric``)."""
    found = next((p for p in pairs if {p["a"], p["b"]} == {first, other}), None)
    if found is None:
        return None
    test = stats.oriented(found, first)
    test["significant"] = _significant(test)
    better = -test["mean_diff"] if metric.lower_is_better else test["mean_diff"]
    test["won"] = test["significant"] and better > 0
    return test


def outcome_text(test: dict[str, Any], runner: str) -> str:
    """The claim a test supports about the selected group: ``won against the runner-up, X`` only when the family's
    test is significant in its favour (its p follows in pair_text); else selected on validation, with what the
    test says and its Holm-adjusted p."""
    p = f"{p_is(test.get('p_adjusted'))}, Holm"
    if test.get("won"):
        return f"won against the runner-up, {runner}"
    if test.get("significant"):
        return f"was selected on validation; on test it is significantly worse than {runner} ({p})"
    return f"was selected on validation; not significantly different from {runner} ({p})"


def best_entry(best: dict[str, Any], metric: Metric = ACCURACY) -> dict[str, Any]:
    """The JSON fields every report's ``best`` shares: the test value reported, chosen on the validation value
    (accuracy's fields always; the deciding metric's under ``metric``)."""
    m = best.get("metric", {})
    return {"accuracy": best.get("accuracy", {}).get("mean"), "std_dev": best.get("accuracy", {}).get("std"),
            "val_accuracy": best.get("val_accuracy", {}).get("mean"),
            "metric": {**metric.as_dict(), "mean": m.get("mean"), "std": m.get("std"), "ci95": m.get("ci95"),
                       "n": m.get("n"), "val_mean": best.get("val_metric", {}).get("mean")},
            "selected_by": best.get("selected_by", metric.val_name), "tie_rule": selection.tie_rule(metric)}


def runner_up_entry(runner: dict[str, Any] | None, test: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON of the best against the runner-up: the family's test and the claim it supports."""
    return {"runner_up": runner["group"] if runner else None, "vs_runner_up": test,
            "significantly_better_than_runner_up": bool(test and test["won"]),
            "outcome": outcome_text(test, runner["group"]) if test and runner else None}


def selection_line(best: dict[str, Any], metric: Metric = ACCURACY) -> str:
    if best.get("selected_by", metric.val_name) != metric.val_name:
        return (f"Selection: the runs recorded no validation {metric.name}, so the best is chosen on test "
                f"{metric.name} itself.")
    shown = "accuracies" if metric == ACCURACY else f"{metric.name} values"
    return (f"Selection: best = {selection.tie_rule(metric)}; the {shown} and tests shown are on the test set "
            f"(choosing on test {metric.name} would inflate the winner).")


def best_text(best: dict[str, Any], metric: Metric, digits: int = 3, spread: bool = False) -> str:
    """``accuracy: 0.931 ± 0.002 on test; chosen on validation accuracy 0.920``."""
    m = best["metric"]
    std = f" ± {fmt(m['std'])}" if spread else ""
    chosen = (f"chosen on validation {metric.name} {fmt(best['val_metric']['mean'])}"
              if best.get("selected_by") == metric.val_name else f"chosen on test {metric.name}")
    return f"{metric.name}: {fmt(m['mean'], digits)}{std} on test; {chosen}"


def summary_cells(s: dict[str, Any], metric: Metric = ACCURACY, digits: int = 3) -> dict[str, str]:
    """A group's table cells, by header: the deciding metric's mean, std, CI and validation mean, beside the
    accuracy and loss."""
    m = s["metric"]
    teachers = f" ({len(s['teachers'])} teachers)" if s["unit"] == TEACHER else ""
    return {"n": f"{s['n']}{teachers}", "Accuracy": fmt(s["accuracy"]["mean"], digits),
            "Loss": fmt(s["loss"]["mean"], digits), metric.header: fmt(m["mean"], digits),
            "Std Dev": std_text(m["std"], digits), "95% CI": ci_text(m["ci95"], digits, metric.bounded),
            metric.val_header: fmt(s["val_metric"]["mean"], digits), "Time (s)": fmt(s["time_s"]["mean"], 1),
            "Memory (GB)": fmt(s["peak_memory_gb"]["mean"], 3), **spent_cells(s)}


def reference_cells(reference: dict[str, Any], metric: Metric = ACCURACY, digits: int = 3) -> dict[str, str]:
    """The teacher's row: its own test metric (n = teachers) and validation metric, accuracy, loss and the time
    it took to train (if it trains) and measure."""
    m = reference["metric"]
    n = reference["accuracy"]["n"] or m["n"]
    return {"n": f"{n} teacher{'s' if n != 1 else ''}", "Accuracy": fmt(reference["accuracy"]["mean"], digits),
            "Loss": fmt(reference["loss"]["mean"], digits), metric.header: fmt(m["mean"], digits),
            "Std Dev": std_text(m["std"], digits), "95% CI": ci_text(m["ci95"], digits, metric.bounded),
            metric.val_header: fmt(reference.get("val_metric", {}).get("mean"), digits),
            "Time (s)": fmt(reference["time_s"]["mean"], 1)}


def rows_for(headers: list[str], first: str, summaries: list[dict[str, Any]], labels: list[str],
             reference: dict[str, Any] | None, metric: Metric = ACCURACY, digits: int = 3) -> list[list[str]]:
    """Table rows: ``first`` names the label column; the teacher's reference row last."""
    rows = [{first: label, **summary_cells(s, metric, digits)} for label, s in zip(labels, summaries)]
    if reference:
        rows.append({first: TEACHER_ROW, **reference_cells(reference, metric, digits)})
    return [[row.get(h, "") for h in headers] for row in rows]


def figures(collection: Collection, summaries: list[dict[str, Any]], stem: str, heading: str,
            reference: dict[str, Any] | None, labels: list[str] | None = None, xs: list[float] | None = None,
            xlabel: str | None = None) -> dict[str, str]:
    """``<stem>.png`` (every run, mean and 95% CI) and ``curves.png`` (learning curves) in the sweep directory."""
    out: dict[str, str] = {}
    lines = baselines(collection) if collection.metric.name == "loss" else None  # cross-entropies, in nats
    labels = [label + recovery_label(s) for label, s in zip(labels or [s["group"] for s in summaries], summaries)]
    try:
        out["plot"] = str(plots.runs_plot(collection.sweep_dir / f"{stem}.png", summaries, heading, labels, xs, xlabel,
                                          reference, collection.metric, lines))
        curves, by_tokens = read_curves(collection), read_token_curves(collection)
        ordered = {s["group"]: curves[s["group"]] for s in summaries if s["group"] in curves}
        bands = {s["group"]: token_band(by_tokens[s["group"]]) for s in summaries if s["group"] in by_tokens}
        if ordered or bands:
            out["curves"] = str(plots.curves_plot(collection.sweep_dir / "curves.png", ordered, heading,
                                                  collection.metric, bands, curve_teacher(collection), lines))
    except OSError as e:
        collection.problems.append(f"plots not written: {e}")
        collection.unwritten.append(str(e))
    return out


def closing_lines(document: dict[str, Any], collection: Collection) -> list[str]:
    """Teacher, notes, pictures, the sweep, failures and problems: the end of every sweep report."""
    lines = [line for line in (reference_line(document.get("teacher")), rests_on(document.get("teacher"))) if line]
    if document.get("notes"):
        lines += ["", "Notes:", *(f"- {n}" for n in document["notes"])]
    lines += [f"{name.capitalize()}: {document[name]}" for name in ("plot", "curves") if document.get(name)]
    lines.append(f"Sweep: {collection.sweep_dir}")
    return lines + failure_text(document["failures"], collection.problems)


def failure_text(fails: list[dict[str, Any]], problems: list[str]) -> list[str]:
    lines = []
    if fails:
        lines.append(f"\nRuns not completed: {len(fails)}")
        lines += [f"- [{f['status']}] {f['overrides']}: {f['error'] or ''}".rstrip(": ") for f in fails]
    if problems:
        lines.append("\nProblems:")
        lines += [f"- {p}" for p in problems]
    return lines


def _order_value(value: Any) -> tuple:
    """Numbers before text, numbers by value: T = 2 before T = 10."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def config_order(collection: Collection):
    """Sort key of summaries: the values of the keys the groups differ in (numbers by value), never the accuracy."""
    columns = [f"cfg:{k}" for k in collection.group_keys]
    firsts = collection.runs.groupby("group", sort=False).first()
    keys = {str(g): tuple(_order_value(row[c]) for c in columns) for g, row in firsts.iterrows()}
    return lambda s: keys.get(s["group"], ())


def generic_report(collection: Collection, test: str = "welch") -> tuple[dict[str, Any], str]:
    """Any sweep: groups by resolved config minus the factors, in config order; all pairs Holm-adjusted;
    one-way ANOVA; the best by the deciding metric's validation value."""
    metric = collection.metric
    reference = teacher_reference(collection, metric)
    summaries = group_summaries(collection, sort_key=config_order(collection))
    groups, seeds = metric_samples(collection)
    pairs = stats.pairwise(groups, seeds, test=test)
    best, runner, versus = best_and_runner_up(summaries, pairs, metric)
    found = outcomes(collection, summaries, reference)
    document: dict[str, Any] = {
        "sweep_dir": str(collection.sweep_dir),
        "metric": metric.as_dict(),
        "group_keys": collection.group_keys,
        "groups": summaries,
        "best": {"group": best.get("group"), **best_entry(best, metric), **runner_up_entry(runner, versus),
                 **best_fields(found, best.get("group"))}
        if best else None,
        "pairs": pairs,
        "anova": stats.anova(groups),
        "test": test,
        "teacher": reference,
        "notes": notes(summaries) + found.notes,
        **found.document,
        "completed": len(collection.completed),
        "failures": failures(collection),
        "problems": collection.problems,
    }
    if summaries:
        document.update(figures(collection, summaries, "groups", f"Sweep {collection.sweep_dir.name}", reference))
    header, others = metric_headers(metric)
    headers = ["Group", "n", header, "Std Dev", "95% CI", metric.val_header, *others, "Time (s)", *SPENT_HEADERS,
               "Memory (GB)"]
    lines = [title(f"Sweep Results ({collection.sweep_dir.name})"), "",
             f"Grouped by: {', '.join(collection.group_keys) or '(one group)'}", "",
             table(headers, rows_for(headers, "Group", summaries, [s["group"] for s in summaries], reference, metric,
                                     4))]
    lines += own_samples_lines(summaries, [s["group"] for s in summaries])
    lines += found.lines
    if best:
        lines += ["", f"Best: {best['group']} (test {metric.name} {fmt(best['metric']['mean'], 4)}, "
                      f"validation {metric.name} {fmt(best['val_metric']['mean'], 4)})", selection_line(best, metric)]
        if versus:
            lines.append(f"{best['group']} {outcome_text(versus, runner['group'])}.")
        lines += winner_caveat(found)
    means = {s["group"]: s["metric"]["mean"] for s in summaries}
    if pairs:
        lines += significance_text(pairs, means, n_text(summaries), test, metric)
    if document["anova"]:
        a = document["anova"]
        lines.append(f"\nOne-way ANOVA: F({a['df'][0]}, {a['df'][1]}) = {fmt(a['F'], 2)}, {p_is(a['p_value'])}")
    lines += ["", *closing_lines(document, collection)]
    return document, "\n".join(lines)
