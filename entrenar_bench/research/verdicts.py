"""The confirmatory test of each claim, and its verdict after Holm's correction across the registered claims.

Every test is on the *improvement* of A over B, ``s·(mean A − mean B)`` (``s = −1`` on a lower-is-better
metric), with the plan's test (Welch's or paired: aggregate/stats.py), two-sided at the claim's boundary:

- superiority ``A > B by δ``: H0 improvement = δ; significant above δ supports it, below δ contradicts it
  (with δ = 0: B significantly better);
- non-inferiority ``A >= B within δ``: the same at −δ;
- equivalence ``A ~ B within δ``: two one-sided tests (TOST, statsmodels), p = the larger; contradicted when
  the difference lies significantly outside ±δ (the two-sided test at the bound it passes);
- best setting ``best KEY is V``: a superiority (or, ``within δ``, non-inferiority) test against each other
  setting; supported only if every one is and the selection rule picks V (an intersection-union test: p =
  the largest), contradicted if one contradicts it (Bonferroni over the settings: k · the smallest p).

Holm's step-down adjustment runs over the support p of every registered claim (its p where the estimate lies
on the claimed side; 1 where it does not, or the claim cannot be tested, so the family stays the registered
one), and separately over the contradiction p (where the estimate lies on the other side). A claim
is **supported** when its adjusted p < α and the estimate lies on the claimed side, **contradicted** when its
adjusted contradiction p < α, else **not supported**, with the 95% CI and, for superiority-type claims
(superiority, non-inferiority, best setting), the minimum detectable effect of the test run (Welch or paired)
at 80% power and Holm's strictest level α/m over the m claims (what the data could not have missed); an
equivalence claim states its TOST bounds and the observed 90% CI instead (the MDE says nothing about showing
equivalence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from statsmodels.stats.weightstats import ttost_ind, ttost_paired

from entrenar_bench.aggregate import stats

SUPPORTED, NOT_SUPPORTED, CONTRADICTED, NOT_TESTABLE = "supported", "not supported", "contradicted", "not testable"


@dataclass
class Samples:
    """One group's samples of the metric, with the unit ids a paired test pairs on (``seed 3``)."""

    label: str
    values: list[float]
    ids: list[str]


def _pair(a: Samples, b: Samples, test: str, sign: int = 1, shift: float = 0.0) -> dict[str, Any]:
    """stats.pairwise of ``sign·a − shift`` against ``sign·b``: its p tests improvement = shift."""
    groups = {"a": [sign * x - shift for x in a.values], "b": [sign * x for x in b.values]}
    return stats.pairwise(groups, {"a": a.ids, "b": b.ids}, test=test)[0]


def comparison(a: Samples, b: Samples, test: str, sign: int, boundary: float, alpha: float) -> dict[str, Any]:
    """A − B in the metric's units (difference, 95% CI, Hedges' g, n), the improvement, and the two-sided p of
    improvement = ``boundary`` with the side of the boundary the estimate lies on."""
    raw = _pair(a, b, test)
    out: dict[str, Any] = {"a": a.label, "b": b.label, "n": {"a": raw["n_a"], "b": raw["n_b"]},
                           "difference": raw["mean_diff"], "ci95": raw["ci95"], "hedges_g": raw["hedges_g"],
                           "se": raw.get("se"), "df": raw.get("df"), "p_value": None, "p_against": None}
    if raw.get("not_testable"):
        return {**out, "not_testable": f"{a.label} vs {b.label}: {raw['not_testable']}"}
    improvement = sign * raw["mean_diff"]
    p = raw["p_value"] if boundary == 0 else _pair(a, b, test, sign, boundary)["p_value"]
    side = "claimed" if improvement > boundary else "other"
    return {**out, "improvement": improvement, "p_value": p, "side": side,
            "p_against": p if side == "other" else None}


def _shared(a: Samples, b: Samples) -> tuple[list[float], list[float]]:
    """The values of the units both groups have, in the same order (what a paired test pairs)."""
    by_a, by_b = dict(zip(a.ids, a.values)), dict(zip(b.ids, b.values))
    shared = sorted(by_a.keys() & by_b.keys())
    return [by_a[u] for u in shared], [by_b[u] for u in shared]


def equivalence(a: Samples, b: Samples, test: str, margin: float, alpha: float) -> dict[str, Any]:
    """TOST of |A − B| < margin; against it, the two-sided test at the bound the estimate passes."""
    out = comparison(a, b, test, 1, 0.0, alpha)
    if out.get("not_testable"):
        return out
    if test == "paired":
        p = ttost_paired(*(np.asarray(x) for x in _shared(a, b)), -margin, margin)[0]
    else:
        p = ttost_ind(np.asarray(a.values), np.asarray(b.values), -margin, margin, usevar="unequal")[0]
    difference = out["difference"]
    outside = abs(difference) >= margin
    return {**out, "p_value": float(p) if math.isfinite(p) else None, "side": "other" if outside else "claimed",
            "tost_bounds": [-margin, margin],
            "ci_tost": stats.t_interval(difference, out.get("se"), out.get("df"), 1 - 2 * alpha),
            "p_against": _pair(a, b, test, 1, math.copysign(margin, difference))["p_value"] if outside else None}


def best_setting(claimed: Samples, others: list[Samples], selected: str, test: str, sign: int, boundary: float,
                 alpha: float) -> dict[str, Any]:
    """One directional test against each other setting; the closest competitor's numbers stand for the claim."""
    tests = [comparison(claimed, other, test, sign, boundary, alpha) for other in others]
    untestable = [t["not_testable"] for t in tests if t.get("not_testable")]
    if untestable:
        return {**tests[0], "comparisons": tests, "selected": selected, "not_testable": untestable[0]}
    closest = min(tests, key=lambda t: t["improvement"])
    against = [t["p_value"] for t in tests if t["side"] == "other" and t["p_value"] is not None]
    on_side = all(t["side"] == "claimed" for t in tests) and selected == claimed.label
    p_values = [t["p_value"] for t in tests]
    return {**closest, "comparisons": tests, "selected": selected, "side": "claimed" if on_side else "other",
            "p_value": None if None in p_values else max(p_values),
            "p_against": min(1.0, len(tests) * min(against)) if against else None}


def decide(outcomes: list[dict[str, Any]], alpha: float) -> None:
    """Holm across the claims (support, and contradiction, separately), then each claim's verdict, in place; a
    superiority-type claim's ``mde_80`` at Holm's strictest level α/m (stats.family_alpha), an equivalence's None."""
    level = stats.family_alpha(len(outcomes), alpha)
    adjusted = stats.holm([o["p_value"] if not o.get("not_testable") and o.get("side") == "claimed"
                           and o.get("p_value") is not None else 1.0 for o in outcomes])
    against = stats.holm([1.0 if o.get("p_against") is None else o["p_against"] for o in outcomes])
    for outcome, p, p_against in zip(outcomes, adjusted, against):
        outcome["p_adjusted"], outcome["p_against_adjusted"] = p, p_against
        superiority = outcome.get("kind") != "equivalence"
        outcome["mde_alpha"] = level if superiority else None
        outcome["mde_80"] = stats.detectable_difference(outcome.get("se"), outcome.get("df"), level) \
            if superiority else None
        if outcome.get("not_testable"):
            outcome["verdict"] = NOT_TESTABLE
        elif p < alpha and outcome["side"] == "claimed":
            outcome["verdict"] = SUPPORTED
        elif p_against < alpha:
            outcome["verdict"] = CONTRADICTED
        else:
            outcome["verdict"] = NOT_SUPPORTED
