"""The sequential procedure of ``--runs auto``: looks, group-sequential tests, Holm, futility and racing.

Looks are planned before anything runs: n_1 = ``--min-runs``, then every ``--look-every`` runs, the last at
``--max-runs`` = N; look k has information fraction t_k = n_k / N. At each look every comparison still running
is a Welch t-test of its group against its reference (the baseline for ``compare`` and ``ablation``; the current
best, by mean, of the points still running for a parameter sweep: racing). Its p-value is put on the z scale,
z = Φ⁻¹(1 − p/2), and compared with the boundaries of aggregate/boundaries.py.

Holm across the m hypotheses, in the group-sequential form of Maurer & Bretz (2013): with r hypotheses
rejected so far, a comparison is rejected when at any of its looks j, z_j ≥ c_j(s·α / (m − r)); each rejection
passes its α on, and the step repeats until none is added. Against a baseline the hypotheses are the g − 1
comparisons (s = 1). Its adjusted p-value is Holm's adjustment of the repeated p-values p̃ / s, p̃ = min_j p̃_j
(the smallest α' whose boundary look j reaches).

A comparison stops at the efficacy boundary; with ``--mde D`` also for futility, when the two one-sided tests
at α (the (1 − 2α) t-interval of the difference inside (−D, D)) show the difference is smaller than D. Futility
is non-binding: it only removes rejections, so the type-I error stays within α. A group gets no more runs once
every comparison that involves it has stopped; the sweep ends when every comparison has stopped, or at N.

Racing tests each of the g points against the best, which is chosen from the data: the hypotheses are
"point i is a best" (m = g), and point i is dropped when the current best beats it, one-sided, at 1/(g − 1) of
the level Holm gives it (two-sided: s = 2/(g − 1)), a Bonferroni over the g − 1 points that could be the best.
This is the closed test of those hypotheses (Marcus et al. 1976): "every point of S is a best" is tested by the
|S|(g − 1) one-sided pairs (i in S, j any other), each at α / (|S|(g − 1)), and Holm's step-down over the points
is its shortcut, so the chance of dropping a best is at most α whatever the configuration (all points equal:
any drop). Its first step asks as much as Holm over every pair (α / (g(g − 1)/2) two-sided), later steps less:
after r drops the level is 2α / ((g − 1)(g − r)), not α / (g(g − 1)/2 − r). Holm over the g − 1 comparisons alone
would not hold: the best mean is biased upwards (10.8 % false drops measured for 8 equal points,
benchmarks/sequential_error_rates.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from entrenar_bench.aggregate.boundaries import boundaries, nominal_level, repeated_p_value, z_of
from entrenar_bench.aggregate.sequential_design import Design
from entrenar_bench.aggregate.stats import holm

RUNNING, EFFICACY, FUTILITY, MAX_RUNS = "running", "efficacy", "futility", "max_runs"
RACING = "racing against the best"  # the report's ``mode`` of a parameter sweep


@dataclass
class Comparison:
    """One pre-specified comparison (``group`` against the baseline, or against the best when racing)."""

    group: str
    status: str = RUNNING
    stopped_at: int | None = None  # the look (1-based) at which it stopped
    tests: list[dict[str, Any]] = field(default_factory=list)  # one per look it was tested at
    crossing: dict[str, Any] | None = None  # the test and boundary that stopped it at the efficacy boundary

    def crosses(self, design: Design, level: float) -> dict[str, Any] | None:
        """The first of its tests whose |z| reaches the boundary of its look at ``level``, or None."""
        for test in self.tests:
            c = boundaries(design.fractions[:test["look"]], level, design.spending)[-1]
            if test["z"] >= c:
                return {**test, "boundary_z": c, "boundary_p": nominal_level(c), "level": level}
        return None


@dataclass
class Outcome:
    design: Design
    comparisons: dict[str, Comparison]
    runs: dict[str, int]  # runs per group used (seeds 0..n−1)
    looks_done: int
    active: list[str]  # the groups that still get runs (empty once the sweep has stopped)
    reference: str | None  # the baseline, or the final best when racing
    family: int  # Holm's m (holm_family)
    share: float  # the share of its Holm level each test gets (holm_family)
    references: list[str]  # the reference at each look done (racing: the best then)


def first_runs(values: Sequence[float], n: int) -> np.ndarray:
    """The finite values among seeds 0..n−1 (a failed or missing run is NaN at its seed's place)."""
    x = np.asarray(values[:n], float)
    return x[np.isfinite(x)]


def welch_test(a: Sequence[float], b: Sequence[float], alpha: float) -> dict[str, Any]:
    """Welch's t-test of mean(a) − mean(b): p, z, and the (1 − 2α) interval the futility rule reads;
    no p (and z = 0, never crossing) with fewer than two runs a side or no variance at all."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    diff = float(a.mean() - b.mean()) if len(a) and len(b) else float("nan")
    va, vb = (a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)) if min(len(a), len(b)) >= 2 else (0.0, 0.0)
    se = math.sqrt(va + vb)
    if se == 0:
        return {"mean_diff": diff, "p_value": None, "z": 0.0, "tost_ci": [None, None]}
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    p = float(2 * stats.t.sf(abs(diff) / se, df))
    half = float(stats.t.isf(alpha, df)) * se
    return {"mean_diff": diff, "p_value": p, "z": z_of(p), "tost_ci": [diff - half, diff + half]}


def _best(samples: Mapping[str, Sequence[float]], groups: Sequence[str], n: int, lower_is_better: bool) -> str:
    worst = math.inf if lower_is_better else -math.inf
    means = {g: float(x.mean()) if len(x := first_runs(samples[g], n)) else worst for g in groups}
    return (min if lower_is_better else max)(groups, key=lambda g: (means[g], -list(groups).index(g)))


def _within(test: Mapping[str, Any], reference: str, mde: float) -> bool:
    """Futility: this look's (1 − 2α) interval of the difference with the reference lies inside (−D, D)."""
    low, high = test.get("tost_ci", [None, None])
    return test.get("against") == reference and low is not None and -mde < low and high < mde


def holm_family(groups: int, racing: bool) -> tuple[int, float]:
    """Holm's m and s, the share of α a hypothesis's own test gets: the g − 1 comparisons with a baseline at
    their level (s = 1); racing, the g hypotheses "point i is a best", each tested against the current best at
    s = 2/(g − 1) of its level (one-sided, a Bonferroni over the g − 1 points that could be the best)."""
    return (groups, 2 / (groups - 1)) if racing else (groups - 1, 1.0)


def _holm_rejections(design: Design, comparisons: Sequence[Comparison], m: int, share: float
                     ) -> dict[str, dict[str, Any]]:
    """Maurer–Bretz sequential Holm over every comparison's looks so far, ``m`` hypotheses in the family (the
    hypotheses not tested count as never rejected), each test at ``share`` of its Holm level: group -> the
    crossing that rejected it."""
    rejected: dict[str, dict[str, Any]] = {}
    while len(rejected) < len(comparisons):
        level = share * design.alpha / (m - len(rejected))
        added = {c.group: hit for c in comparisons if c.group not in rejected and (hit := c.crosses(design, level))}
        if not added:
            break
        rejected.update(added)
    return rejected


def run_procedure(design: Design, samples: Mapping[str, Sequence[float]], baseline: str | None,
                  lower_is_better: bool, looks: int | None = None) -> Outcome:
    """Apply the procedure to ``samples`` (group -> metric values by seed, 0 first) at the planned looks up to
    ``looks`` (default: every look the data reaches). ``baseline`` None: racing against the current best.
    ``samples[g][i]`` is seed i's value (NaN where that run failed)."""
    groups = list(samples)
    others = [g for g in groups if g != baseline]
    comparisons = {g: Comparison(g) for g in others}
    active, runs, reference, done, references = list(groups), {g: 0 for g in groups}, baseline, 0, []
    m, share = holm_family(len(groups), baseline is None)
    for k, n in enumerate(design.looks[:looks], start=1):
        if not active or (looks is None and any(len(samples[g]) < n for g in active)):
            break
        done = k
        runs.update({g: n for g in active})
        reference = baseline if baseline is not None else _best(samples, active, n, lower_is_better)
        references.append(reference)
        family = [comparisons[g] for g in groups if g != reference and g in comparisons]
        for c in family:
            if c.status == RUNNING and c.group in active:
                test = welch_test(first_runs(samples[c.group], n), first_runs(samples[reference], n),
                                  design.alpha)
                c.tests.append({"look": k, "n": n, "against": reference, **test})
        crossed = _holm_rejections(design, family, m, share)
        for c in family:
            if c.status != RUNNING or c.group not in active:
                continue
            if c.group in crossed:
                c.status, c.stopped_at, c.crossing = EFFICACY, k, crossed[c.group]
            elif design.mde is not None and _within(c.tests[-1] if c.tests else {}, reference, design.mde):
                c.status, c.stopped_at = FUTILITY, k
            elif k == len(design.looks):
                c.status, c.stopped_at = MAX_RUNS, k
        running = [c.group for c in family if c.status == RUNNING and c.group in active]
        active = [g for g in active if g in running or (running and g == reference)]
    return Outcome(design, comparisons, runs, done, active, reference, m, share, references)


def adjusted_p_values(outcome: Outcome, look: int | None = None) -> dict[str, float | None]:
    """Holm-adjusted repeated p-values of the comparisons as they stood at ``look`` (default: the last done), each
    against that look's reference: Holm over ``family`` of p̃ / share, the hypotheses not tested padded with p = 1
    (which leaves the others' multipliers as Holm's); rejected at that look iff ≤ α."""
    look = look or outcome.looks_done
    reference = outcome.references[look - 1] if outcome.references else outcome.reference
    family = [c for g, c in outcome.comparisons.items() if g != reference]
    fractions = outcome.design.fractions
    repeated = [min((repeated_p_value(t["z"], fractions[:t["look"]], outcome.design.spending) / outcome.share
                     for t in c.tests if t["p_value"] is not None and t["look"] <= look), default=None)
                for c in family]
    padding = [1.0] * (outcome.family - len(family))
    return dict(zip((c.group for c in family), holm([*repeated, *padding])))
