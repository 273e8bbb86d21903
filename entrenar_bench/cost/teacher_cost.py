"""What the teacher cost a cost-performance study, apart from the configurations' own prices, and whether the
configurations were priced at equal tokens.

The teacher is trained once per (teacher, data) and shared by every run: its training is priced like a
configuration's time (its measured seconds, scaled by the measured device's performance factor, at the GPU's
hourly price), never added to the configurations' costs. Its forward passes during distillation are part of
each run's time already; their FLOPs (``run/compute.py``) and their share of a run's FLOPs are given beside.

Equal tokens: each configuration's mean ``tokens_seen``; a study whose configurations differ by more than one
batch is not priced at equal tokens, and ``-- train.tokens=N`` makes it so (``training/budget.py``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from entrenar_bench.aggregate.collect import Collection
from entrenar_bench.aggregate.teacher import teacher_reference
from entrenar_bench.cost.model import CostModel, measured_factor

SPENT_DETAILS = ("tokens_seen", "flops", "flops_teacher")  # per configuration, means over its runs


def spent_details(rows: pd.DataFrame) -> dict[str, float | None]:
    """A configuration's mean tokens seen, FLOPs and teacher FLOPs (None where its runs recorded none)."""
    out = {}
    for column in SPENT_DETAILS:
        values = pd.to_numeric(rows[column], errors="coerce").dropna() if column in rows else pd.Series(dtype=float)
        out[column] = float(values.mean()) if len(values) else None
    return out


def teacher_cost(collection: Collection, cost_model: CostModel) -> dict[str, Any] | None:
    """The teachers' training (seconds measured, hours and cost on ``cost_model``) and their forward FLOPs per
    run and share of a run's FLOPs; None where no run used a teacher."""
    reference = teacher_reference(collection)
    if not reference:
        return None
    done = collection.completed
    seconds = sum(t["time_s"] for t in reference["teachers"] if t["time_s"] is not None)
    devices = sorted(set(done["device"].dropna().astype(str)))
    factor, assumed = measured_factor(devices[0] if len(devices) == 1 else None)
    hours = cost_model.hours(seconds / 3600.0, factor)
    flops = pd.to_numeric(done.get("flops_teacher", pd.Series(dtype=float)), errors="coerce")
    total = pd.to_numeric(done.get("flops", pd.Series(dtype=float)), errors="coerce")
    share = (flops / total).dropna()
    return {"teachers": len(reference["teachers"]), "training_s": seconds, "hours": hours,
            "cost": cost_model.cost(hours), "factor_assumed": assumed,
            "forward_flops_per_run": float(flops.mean()) if flops.notna().any() else None,
            "share_of_run_flops": float(share.mean()) if len(share) else None}


def equal_tokens(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Whether the configurations saw equal tokens (within the smallest batch's worth: 1 % of the mean here, as
    batches are not recorded per configuration), and each one's."""
    tokens = {r["config"]: r["details"].get("tokens_seen") for r in results}
    known = [t for t in tokens.values() if t is not None]
    equal = bool(known) and len(known) == len(tokens) and max(known) - min(known) <= 0.01 * (sum(known) / len(known))
    return {"per_config": tokens, "equal": equal}


def teacher_lines(document: dict[str, Any], money) -> list[str]:
    """The report's lines on the teacher's cost and the tokens."""
    lines = []
    t = document.get("teacher_cost")
    if t:
        share = t["share_of_run_flops"]
        forward = (f"; its forward passes: {t['forward_flops_per_run']:.3g} FLOPs a run"
                   + (f" ({share:.0%} of a run's FLOPs, in the runs' time already)" if share is not None else "")
                   if t["forward_flops_per_run"] is not None else "")
        lines.append(f"Teacher: trained once ({t['teachers']} teacher{'s' if t['teachers'] != 1 else ''}, "
                     f"{t['training_s']:.0f} s measured, {t['hours']:.3g} h, {money(t['cost'])}), not in the "
                     f"configurations' costs{forward}.")
    tokens = document.get("tokens")
    if tokens and any(v is not None for v in tokens["per_config"].values()):
        cells = ", ".join(f"{k} {v:,.0f}" for k, v in tokens["per_config"].items() if v is not None)
        verdict = ("equal tokens" if tokens["equal"]
                   else "not equal tokens: add -- train.tokens=N to price at equal tokens")
        lines.append(f"Tokens per run: {cells} ({verdict}).")
    return lines
