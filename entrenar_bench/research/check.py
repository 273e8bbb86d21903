"""``research check``: each registered claim's verdict on the linked sweeps, under the registered plan, with
every deviation from it stated beside the verdict.

A claim is tested on the last linked sweep that has all its groups, on its own metric, else the plan's, else
the task's primary metric, else accuracy. It is **exploratory**, never confirmatory, when it was registered
or last edited after that sweep's first run, when the plan changed after it, or when it is checked on another
metric or with another test than registered (``--metric``, ``--test``). Fewer runs than planned and a changed
config tree are stated too. The tests and verdicts: research/verdicts.py.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from entrenar_bench.aggregate import selection
from entrenar_bench.aggregate.collect import SweepError
from entrenar_bench.aggregate.report import TEST_NAMES, pair_text
from entrenar_bench.research.artifact import format_time, parse_time
from entrenar_bench.research.claims import Claim, Plan, plan_from
from entrenar_bench.research.hypotheses import Registered, registered_claims, registered_plan
from entrenar_bench.research.prereg import registrations
from entrenar_bench.research.samples import (
    NoGroup, Sweep, default_metric, lower_is_better, read_sweep, resolve, samples, seeds, settings,
)
from entrenar_bench.research.verdicts import Samples, best_setting, comparison, decide, equivalence

CHANGED_CONFIG = "config_changed"
COMPARED = ("verdict", "status", "p_adjusted", "p_against_adjusted", "difference")  # what verify reproduces


def _groups(claim: Claim, sweep: Sweep) -> tuple[str, list[str]]:
    """The claim's group and the groups it is compared with, as labels of ``sweep`` (NoGroup if absent)."""
    if claim.kind == "best":
        return settings(sweep, claim.key, claim.value)
    return resolve(sweep, claim.a), [resolve(sweep, claim.b)]


def _sweep_for(claim: Claim, sweeps: list[Sweep]) -> tuple[Sweep, str, list[str]]:
    reasons = []
    for sweep in reversed(sweeps):
        try:
            return (sweep, *_groups(claim, sweep))
        except NoGroup as e:
            reasons.append(str(e))
    raise NoGroup(reasons[0] if reasons else "no linked sweep could be read")


def _samples(sweep: Sweep, label: str, metric: str) -> Samples:
    found = samples(sweep, label, metric)
    if not found.values:
        raise NoGroup(f"no completed run of {label!r} in sweep {sweep.name} recorded {metric!r}")
    return Samples(label, found.values, [f"{found.kind} {i}" for i in found.ids])


def _mean(sweep: Sweep, label: str, metric: str) -> float | None:
    values = samples(sweep, label, metric).values
    return sum(values) / len(values) if values else None


def _selected(sweep: Sweep, labels: list[str], metric: str, sign: int) -> tuple[str, str]:
    """The selection rule's pick (aggregate/selection.py) among ``labels``, on the metric's validation twin
    where every group recorded it, else on the metric itself; and what it selected on."""
    twin = metric if metric.startswith("val_") else f"val_{metric}"
    by = twin if all(_mean(sweep, label, twin) is not None for label in labels) else metric
    ranked = selection.rank(labels, lambda label: sign * _mean(sweep, label, by),
                            lambda label: _mean(sweep, label, "val_loss"))
    return ranked[0], by


def _outcome(claim: Claim, sweep: Sweep, labels: tuple[str, list[str]], metric: str, plan: Plan) -> dict:
    sign = -1 if lower_is_better(sweep, metric) else 1
    mine, others = labels
    a, rest = _samples(sweep, mine, metric), [_samples(sweep, label, metric) for label in others]
    boundary = -claim.margin if claim.within else claim.margin
    if claim.kind == "equivalence":
        outcome = equivalence(a, rest[0], plan.test, claim.margin, plan.alpha)
    elif claim.kind == "best":
        selected, by = _selected(sweep, [mine, *others], metric, sign)
        outcome = {**best_setting(a, rest, selected, plan.test, sign, boundary, plan.alpha), "selected_by": by}
    else:
        outcome = comparison(a, rest[0], plan.test, sign, boundary, plan.alpha)
    return {**outcome, "lower_is_better": sign < 0}


def _deviations(registered: Registered, sweep: Sweep, groups: list[str], plan: Plan, used: Plan,
                plan_changes: list[tuple[int, str]], metric: str, registered_metric: str) -> tuple[list, list]:
    """(deviations, reasons the claim is exploratory) for this claim on this sweep."""
    exploratory, deviations = [], []
    started = sweep.started
    if started is None:
        exploratory.append("the sweep's first run has no recorded start time")
    else:
        first = format_time(started)
        if parse_time(registered.registered) > started:
            exploratory.append(f"registered {registered.registered}, after the sweep's first run ({first})")
        exploratory += [f"edited in amendment {i} ({when}), after the sweep's first run ({first})"
                        for i, when in registered.edits if parse_time(when) > started]
        exploratory += [f"analysis plan changed in amendment {i} ({when}), after the sweep's first run ({first})"
                        for i, when in plan_changes if parse_time(when) > started]
    if metric != registered_metric:
        exploratory.append(f"checked on {metric}, registered on {registered_metric}")
    if used.test != plan.test:
        exploratory.append(f"checked with the {used.test} test, registered {plan.test}")
    if plan.runs:
        short = [f"{label}: {n} of {plan.runs}" for label in groups if (n := seeds(sweep, label)) < plan.runs]
        if short:
            deviations.append(f"fewer runs than planned ({', '.join(short)})")
    deviations += [f"config tree changed ({f['detail']})" for f in sweep.flags if f.get("flag") == CHANGED_CONFIG]
    return deviations, exploratory


def _claim(registered: Registered, sweeps: list[Sweep], plan: Plan, used: Plan, plan_changes, metric: str | None):
    claim = registered.claim
    entry: dict[str, Any] = {"id": claim.id, "claim": claim.text, "kind": claim.kind, "margin": claim.margin,
                             "registered": registered.registered, "edited": [w for _, w in registered.edits]}
    try:
        sweep, mine, others = _sweep_for(claim, sweeps)
    except NoGroup as e:
        return {**entry, "metric": metric or claim.metric or plan.metric, "not_testable": str(e),
                "deviations": [], "exploratory": [], "status": None}
    registered_metric = claim.metric or plan.metric or default_metric(sweep)
    checked = metric or registered_metric
    try:
        outcome = _outcome(claim, sweep, (mine, others), checked, used)
    except NoGroup as e:
        outcome = {"not_testable": str(e)}
    deviations, exploratory = _deviations(registered, sweep, [mine, *others], plan, used, plan_changes, checked,
                                          registered_metric)
    return {**entry, "metric": checked, "test": used.test, "sweep": sweep.name, "groups": [mine, *others],
            **outcome, "deviations": deviations, "exploratory": exploratory,
            "status": "exploratory" if exploratory else "confirmatory"}


def evaluate(artifact: dict, sweeps: list[tuple[str, Path, list[dict]]], metric: str | None = None,
             test: str | None = None) -> dict[str, Any]:
    """Every registered claim's verdict on ``sweeps`` ((name as linked, folder to read, its links)), with the
    registered plan, or with ``metric`` / ``test`` instead (deviations, flagged)."""
    records = registrations(artifact)
    claims = registered_claims(records)
    plan, plan_changes = registered_plan(records)
    used = plan_from({"test": test, "metric": metric}, plan)
    loaded, problems = [], []
    for name, folder, links in sweeps:
        try:
            loaded.append(read_sweep(name, folder, links))
        except SweepError as e:
            problems.append(f"sweep {name}: {e}")
    results = [_claim(r, loaded, plan, used, plan_changes, metric) for r in claims]
    decide(results, plan.alpha)
    return {"plan": plan.record(), "checked_with": {"metric": metric, "test": used.test}, "claims": results,
            "family": len(results), "problems": problems}


def _effect(c: dict[str, Any]) -> str:
    """``kd − none = +0.0624 (95% CI …), Hedges' g = …, p = … (Holm), Welch's t-test; …`` with the p that decides:
    the evidence against the claim where the estimate lies on the other side, else the evidence for it."""
    against = c.get("p_against") is not None  # the estimate lies on the other side: the evidence against
    p = c["p_against_adjusted"] if against else c["p_adjusted"]
    test = "TOST" if c["kind"] == "equivalence" and not against else TEST_NAMES[c["test"]]
    test += ", against the claim" if against else ""
    better = "lower" if c["lower_is_better"] else "higher"
    text = pair_text({"mean_diff": c["difference"], "ci95": c["ci95"], "hedges_g": c["hedges_g"], "p_adjusted": p})
    n = f"n = {c['n']['a']}, {c['n']['b']}"
    return f"{c['a']} − {c['b']} = {text}, {test}; {c['metric']}, {better} is better; {n}"


def claim_line(c: dict[str, Any]) -> str:
    """One line per claim: the verdict, its status, the numbers, what the data can rule out, the deviations."""
    if c.get("not_testable"):
        return f"{c['id']} {c['claim']}: NOT TESTABLE: {c['not_testable']}"
    head = f"{c['id']} {c['claim']}: {c['verdict'].upper()} ({c['status']})"
    parts = [_effect(c)]
    if c["kind"] == "best":
        parts = [f"the selection rule ({c['selected_by']}) picks {c['selected']}; closest other setting: {parts[0]}"]
    if c["verdict"] == "not supported" and c["kind"] == "equivalence" and c.get("tost_bounds"):
        low, high = c["tost_bounds"]
        ci = c.get("ci_tost")
        shown = f"[{ci[0]:+.4g}, {ci[1]:+.4g}]" if ci else "undefined"
        parts.append(f"equivalence needs the 90% CI inside the TOST bounds [{low:+.4g}, {high:+.4g}]; observed "
                     f"{shown}")
    elif c["verdict"] == "not supported" and c.get("mde_80") is not None:
        parts.append(f"this test had 80% power only for true differences beyond {c['mde_80']:.4g} (minimum "
                     f"detectable effect at Holm's level {c['mde_alpha']:.3g}); smaller ones may go undetected")
    parts += [f"deviation: {d}" for d in c["deviations"]] + [f"exploratory: {e}" for e in c["exploratory"]]
    return f"{head}: " + "; ".join(parts) + f"; sweep {c['sweep']}"


def summary(report: dict[str, Any]) -> str:
    plan = report["plan"]
    runs = f", {plan['runs']} runs per group planned" if plan["runs"] else ""
    lines = [f"Claims: {report['family']} registered, Holm-adjusted across them; plan: "
             f"{plan['metric'] or 'the primary metric (accuracy)'}, {TEST_NAMES[plan['test']]}, "
             f"alpha = {plan['alpha']:g}{runs}"]
    lines += [claim_line(c) for c in report["claims"]]
    lines += [f"problem: {p}" for p in report["problems"]]
    return "\n".join(lines)


def _same(recorded: Any, now: Any) -> bool:
    if isinstance(recorded, (int, float)) and isinstance(now, (int, float)):
        return math.isclose(recorded, now, rel_tol=1e-9, abs_tol=1e-12)
    return recorded == now


def differences(recorded: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """How the verdicts ``now`` differ from ``recorded`` (a report as evaluate() made it, read back)."""
    before = {c.get("id"): c for c in recorded.get("claims") or [] if isinstance(c, dict)}
    found = []
    for claim in now["claims"]:
        old = before.pop(claim["id"], None)
        if old is None:
            found.append(f"{claim['id']} has no recorded verdict")
            continue
        found += [f"{claim['id']} {key}: {old.get(key)!r} recorded, {claim.get(key)!r} recomputed"
                  for key in COMPARED if not _same(old.get(key), claim.get(key))]
    return found + [f"{claim_id} was recorded but is not registered" for claim_id in before]
