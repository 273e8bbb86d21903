"""What every sweep report adds about its students' worth: each group's tokens, FLOPs and recovery of the
teacher (``aggregate/recovery.py``), the tokens its mean held-out curve took to reach 50 / 80 / 90 % recovery,
and, for language models, the trivial baselines and the verdict (``aggregate/usefulness.py``).

:func:`outcomes` annotates each group summary (``recovery``, ``tokens_to_recovery``) and returns the JSON fields
(``baselines``, ``usefulness``, ``recovery``), the text lines and the notes; :func:`winner_caveat` is the line a
report puts under its winner when every group is below the unigram line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from entrenar_bench.aggregate.collect import Collection
from entrenar_bench.aggregate.recovery import (
    curve_teacher, group_recovery, read_token_curves, token_band, tokens_text, tokens_to_reach,
)
from entrenar_bench.aggregate.usefulness import NO_WINNER, baseline_line, baselines, verdict
from entrenar_bench.run.recovery import LEVELS


SPENT = ("tokens_seen", "flops", "flops_student", "flops_teacher", "flops_generation")  # described per group
SPENT_HEADERS = ["Tokens", "FLOPs", "Recovery"]  # the table columns beside the time


def spent_cells(s: dict[str, Any]) -> dict[str, str]:
    """A group's mean tokens seen, mean FLOPs (all roles) and recovery, as table cells ("—" where unknown)."""
    tokens, flops = (s.get(k, {}).get("mean") for k in ("tokens_seen", "flops"))
    return {"Tokens": "—" if tokens is None else f"{tokens:,.0f}", "FLOPs": "—" if flops is None else f"{flops:.2e}",
            "Recovery": _recovery_cell(s.get("recovery") or {}, spread=False)}


def recovery_label(s: dict[str, Any]) -> str:
    """A plot label's second line, ``recovery 0.73``, where the group's recovery is known (else nothing)."""
    mean = (s.get("recovery") or {}).get("mean")
    return "" if mean is None else f"\nrecovery {mean:.2f}"


def spent_row(s: dict[str, Any]) -> dict[str, Any]:
    """A group's JSON fields: mean ``tokens_seen``, ``flops`` by role, ``recovery`` (mean, std, CI, n),
    ``tokens_to_recovery`` and ``before``: each held-out metric measured before training (a pruned student: right
    after pruning; mean, std, CI, n), where the runs recorded it."""
    flops = {role: s.get(column, {}).get("mean") for role, column in
             (("total", "flops"), ("student", "flops_student"), ("teacher", "flops_teacher"),
              ("generation", "flops_generation"))}
    return {"tokens_seen": s.get("tokens_seen", {}).get("mean"), "flops": flops,
            "recovery": s.get("recovery"), "tokens_to_recovery": s.get("tokens_to_recovery"),
            "before": s.get("before") or None}


@dataclass
class Outcomes:
    document: dict[str, Any] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _recovery_cell(d: dict[str, Any], spread: bool = True) -> str:
    if d.get("mean") is None:
        return "—"
    return f"{d['mean']:.2f}" + (f" ± {d['std']:.2f}" if spread and d.get("std") is not None else "")


def outcomes(collection: Collection, summaries: list[dict[str, Any]], reference: dict[str, Any] | None) -> Outcomes:
    """The module's fields, lines and notes for ``summaries`` (annotated in place)."""
    out = Outcomes()
    recoveries = group_recovery(collection, reference)
    curves, teacher = read_token_curves(collection), curve_teacher(collection)
    for s in summaries:
        s["recovery"] = recoveries.get(s["group"], {"n": 0, "mean": None, "std": None, "ci95": [None, None]})
        points = curves.get(s["group"])
        known = points is not None and teacher is not None  # no teacher on the subset: unknown, not "not reached"
        s["tokens_to_recovery"] = tokens_to_reach(token_band(points), teacher) if known else None
    metric = collection.metric
    out.document["recovery"] = {
        "metric": metric.name, "split": "test", "formula": "(before - after) / (before - teacher)",
        "groups": {s["group"]: s["recovery"] for s in summaries},
        "curve": {"split": "val (a fixed subset)", "teacher": teacher,
                  "tokens_to": {s["group"]: s["tokens_to_recovery"] for s in summaries}}}
    if any(s["recovery"]["mean"] is not None for s in summaries):
        out.lines.append(f"Recovery of the teacher (test {metric.name}; 0 = the student's start, 1 = the teacher): "
                         + "; ".join(f"{s['group']} {_recovery_cell(s['recovery'])}" for s in summaries))
    started = [s for s in summaries if (s.get("before") or {}).get(metric.name, {}).get("mean") is not None]
    if started:
        out.lines.append(f"Before training (test {metric.name}; a pruned student: right after pruning): "
                         + "; ".join(f"{s['group']} {_recovery_cell(s['before'][metric.name])}" for s in started))
    reached = [s for s in summaries if s["tokens_to_recovery"]]
    if reached:
        levels = " / ".join(f"{round(level * 100)}%" for level in LEVELS)
        out.lines.append(f"Tokens to {levels} recovery (mean held-out curve, interpolated): "
                         + "; ".join(f"{s['group']} " + " / ".join(tokens_text(v) for v in s["tokens_to_recovery"]
                                                                    .values()) for s in reached))
    lines = baselines(collection)
    judged = verdict(summaries, lines)
    out.document.update(baselines=lines, usefulness=judged)
    out.lines += baseline_line(lines, reference["loss"]["mean"] if reference else None)
    if judged and judged["warning"]:
        out.notes.append(f"warning: {judged['warning']} (test cross-entropy not below the unigram baseline "
                         f"{judged['value']:.4f})")
        out.lines.append(f"WARNING: {judged['warning']}.")
    if out.lines:
        out.lines.insert(0, "")  # apart from the table above, which ends at the first blank line
    return out


def winner_caveat(found: Outcomes) -> list[str]:
    """The line under a report's winner where every group is below the unigram line (none otherwise)."""
    judged = found.document.get("usefulness")
    return [f"Caveat: {NO_WINNER}."] if judged and judged["all_below"] else []


def best_fields(found: Outcomes, group: str | None) -> dict[str, Any]:
    """What the JSON ``best`` adds: ``useful`` (whether the best group is below the unigram line; None without
    a baseline) and, where every group is below it, the ``caveat``."""
    judged = found.document.get("usefulness")
    if not judged:
        return {"useful": None}
    return {"useful": judged["groups"].get(group, {}).get("useful"),
            **({"caveat": NO_WINNER} if judged["all_below"] else {})}
