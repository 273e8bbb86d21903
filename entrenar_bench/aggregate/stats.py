"""Statistics for a handful of seeds per group, as the field recommends for n = 3–10.

t-intervals (never normal approximations), Welch's t-test with its exact t distribution,
Holm's step-down correction across the pairs of one report, Hedges' g, and the minimum
detectable effect at 80% power of the test actually run (Welch or paired) at the family's Holm level, so a
null result says what it could not have missed.

A group whose runs all scored the same has zero variance: scipy then warns of "catastrophic
cancellation" (or returns an infinite t). The warning is silenced and the fact is stated instead
(``zero_variance`` in a pair; the reports print "zero variance in group X"); a pair with zero
variance on both sides (or in every paired difference) is not testable.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import optimize, stats
from statsmodels.stats.multitest import multipletests


def _clean(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


@contextlib.contextmanager
def _quiet():
    """scipy's numerical warnings (zero variance): stated as facts by the reports instead."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def zero_variance(values: Sequence[float]) -> bool:
    """Two or more values, all equal."""
    return len(values) >= 2 and float(np.ptp(np.asarray(values, dtype=float))) == 0.0


def describe(values: Sequence[float]) -> dict[str, Any]:
    """n, mean, sample std (ddof=1) and the 95% t-interval of the mean."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    mean = float(x.mean()) if n else float("nan")
    std = float(x.std(ddof=1)) if n > 1 else float("nan")
    if n > 1:
        half = stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)
        ci = [mean - half, mean + half]
    else:
        ci = [float("nan"), float("nan")]
    return {"n": n, "mean": _clean(mean), "std": _clean(std), "ci95": [_clean(c) for c in ci]}


def hedges_g(a: Sequence[float], b: Sequence[float]) -> float:
    """Cohen's d on the pooled SD, times the small-sample correction J = 1 − 3/(4(n₁+n₂)−9)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    n1, n2 = len(a), len(b)
    pooled = math.sqrt(((n1 - 1) * a.var(ddof=1) + (n2 - 1) * b.var(ddof=1)) / (n1 + n2 - 2))
    if pooled == 0:
        return 0.0 if a.mean() == b.mean() else math.copysign(math.inf, a.mean() - b.mean())
    return (a.mean() - b.mean()) / pooled * (1 - 3 / (4 * (n1 + n2) - 9))


def _t_test(name: str, result, a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    with _quiet():
        ci = result.confidence_interval(0.95)
    return {
        "test": name,
        "t": _clean(result.statistic),
        "df": _clean(result.df),
        "p_value": _clean(result.pvalue),
        "mean_diff": float(np.mean(a) - np.mean(b)),
        "ci95": [_clean(ci.low), _clean(ci.high)],
        "hedges_g": _clean(hedges_g(a, b)),
    }


def welch(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Welch's t-test of mean(a) − mean(b): t, Welch–Satterthwaite df, two-sided p, 95% CI, g."""
    with _quiet():
        return _t_test("welch", stats.ttest_ind(a, b, equal_var=False), a, b)


def paired(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Paired t-test on matched seeds (a[i] and b[i] share seed i)."""
    with _quiet():
        return _t_test("paired", stats.ttest_rel(a, b), a, b)


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Secondary, rank-based check (at n=3 per group it can never reach p < 0.05)."""
    with _quiet():
        return _clean(stats.mannwhitneyu(a, b, alternative="two-sided").pvalue)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment; undefined p-values stay undefined and are not counted."""
    defined = [i for i, p in enumerate(p_values) if p is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    if defined:
        _, p_adj, _, _ = multipletests([p_values[i] for i in defined], method="holm")
        for i, p in zip(defined, p_adj):
            adjusted[i] = float(p)
    return adjusted


@functools.lru_cache(maxsize=4096)
def _detectable_ncp(df: float, alpha: float, power: float) -> float:
    """The noncentrality δ/SE at which a two-sided t-test with ``df`` rejects at ``alpha`` with ``power``:
    P(|T'| > t_{1−α/2, df}) = power, T' ~ noncentral t(df, δ/SE) (scipy's nct; cached: a root solve)."""
    critical = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(ncp: float) -> float:
        return stats.nct.sf(critical, df, ncp) + stats.nct.sf(critical, df, -ncp) - power  # lower tail by symmetry

    return float(optimize.brentq(shortfall, 0.0, 4 * critical))  # power at 4·critical is above 0.999


def detectable_difference(se: float | None, df: float | None, alpha: float = 0.05, power: float = 0.8
                          ) -> float | None:
    """Smallest true mean difference the t-test with standard error ``se`` and ``df`` detects with ``power`` at
    two-sided ``alpha``: δ = ncp(df, α, power) · SE (Welch: SE² = s₁²/n₁ + s₂²/n₂ with Satterthwaite's df;
    paired: SE = s_d/√n, df = n − 1)."""
    if not se or not df or not math.isfinite(se) or not math.isfinite(df) or se <= 0 or df <= 0:
        return None
    return _detectable_ncp(round(float(df), 6), alpha, power) * se


def standard_error(a: Sequence[float], b: Sequence[float], test: str = "welch") -> tuple[float, float] | None:
    """(SE, df) of mean(a) − mean(b) under ``test``: Welch (Satterthwaite's df) or paired (a[i], b[i] matched)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return None
    if test == "paired":
        return float(np.std(a - b, ddof=1) / math.sqrt(len(a))), float(len(a) - 1)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    if va + vb == 0:
        return None
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return float(math.sqrt(va + vb)), float(df)


def t_interval(center: float, se: float | None, df: float | None, confidence: float) -> list[float] | None:
    """center ± t_{(1+c)/2, df}·SE (the (1 − 2α) interval is the one TOST at α decides by)."""
    if not se or not df:
        return None
    half = float(stats.t.ppf((1 + confidence) / 2, df)) * se
    return [center - half, center + half]


def minimum_detectable_effect(a: Sequence[float], b: Sequence[float], test: str = "welch", alpha: float = 0.05,
                              power: float = 0.8) -> float | None:
    """Smallest true difference the test actually run (``welch`` or ``paired``) detects with this power at
    two-sided ``alpha`` (in the metric's units), from the samples' own spread."""
    found = standard_error(a, b, test)
    return detectable_difference(*found, alpha, power) if found else None


def family_alpha(m: int, alpha: float = 0.05) -> float:
    """α/m: Holm's first (strictest) step over a family of m tests. A pair whose raw p is below it is rejected
    whatever its rank, so power at α/m is a lower bound on its power under Holm."""
    return alpha / max(m, 1)


def anova(groups: Mapping[str, Sequence[float]]) -> dict[str, Any] | None:
    """One-way ANOVA across every group of a sweep (needs two groups of two or more runs)."""
    samples = [list(v) for v in groups.values() if len(v) >= 2]
    if len(samples) < 2:
        return None
    with _quiet():
        result = stats.f_oneway(*samples)
    df_between = len(samples) - 1
    df_within = sum(len(s) for s in samples) - len(samples)
    return {"F": _clean(result.statistic), "df": [df_between, df_within], "p_value": _clean(result.pvalue)}


def pairwise(
    groups: Mapping[str, Sequence[float]],
    seeds: Mapping[str, Sequence[Any]] | None = None,
    test: str = "welch",
    pairs: Sequence[tuple[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """Compare every pair (or the given pairs) of groups, Holm-adjusted across them.

    Each entry: ``a``, ``b`` (labels; differences are ``a − b``), ``t``, ``df``, ``p_value``,
    ``p_adjusted``, ``mean_diff``, ``ci95``, ``hedges_g``, ``mann_whitney_p``, ``se``, ``mde_80`` (the minimum
    detectable effect of this test at 80% power and ``mde_alpha``, Holm's strictest level for the family),
    ``zero_variance`` (the labels of the two whose values are all equal) and, when no test is possible,
    ``not_testable`` (why). With ``test="paired"`` only the seeds (units) both groups share are used.
    """
    pairs = list(pairs) if pairs is not None else list(itertools.combinations(groups, 2))
    results = []
    for a, b in pairs:
        xa, xb = list(groups[a]), list(groups[b])
        if test == "paired":
            if seeds is None:
                raise ValueError("a paired test needs the seed of every run")
            by_a, by_b = dict(zip(seeds[a], xa)), dict(zip(seeds[b], xb))
            shared = sorted(set(by_a) & set(by_b))
            xa, xb = [by_a[s] for s in shared], [by_b[s] for s in shared]
        entry: dict[str, Any] = {"a": a, "b": b, "n_a": len(xa), "n_b": len(xb),
                                 "zero_variance": [g for g, x in ((a, xa), (b, xb)) if zero_variance(x)]}
        degenerate = zero_variance(np.subtract(xa, xb)) if test == "paired" else len(entry["zero_variance"]) == 2
        if len(xa) < 2 or len(xb) < 2:
            entry["not_testable"] = "fewer than 2 samples on a side"
        elif degenerate:
            entry["not_testable"] = "zero variance on both sides" if test != "paired" else \
                "every paired difference is the same"
        if "not_testable" not in entry:
            entry.update(paired(xa, xb) if test == "paired" else welch(xa, xb))
            entry["mann_whitney_p"] = mann_whitney(xa, xb)
            entry["se"] = (standard_error(xa, xb, test) or (None,))[0]
        else:
            entry.update(test=test, t=None, df=None, p_value=None, ci95=[None, None],
                         mean_diff=float(np.mean(xa) - np.mean(xb)) if xa and xb else None,
                         hedges_g=None, mann_whitney_p=None, se=None)
        results.append(entry)
    adjusted = holm([r["p_value"] for r in results])
    level = family_alpha(sum(p is not None for p in adjusted))
    for entry, p_adj in zip(results, adjusted):
        entry["p_adjusted"] = p_adj
        entry["mde_alpha"] = level
        entry["mde_80"] = detectable_difference(entry["se"], entry["df"], level)
    return results


def oriented(pair: dict[str, Any], first: str) -> dict[str, Any]:
    """``pair`` as ``first`` − the other (a copy; signs of t, difference, CI and g flipped when it was b − a)."""
    if pair["a"] == first:
        return dict(pair)
    flipped = dict(pair, a=pair["b"], b=pair["a"], n_a=pair["n_b"], n_b=pair["n_a"])
    for key in ("t", "mean_diff", "hedges_g"):
        flipped[key] = None if pair.get(key) is None else -pair[key]
    low, high = pair.get("ci95") or [None, None]
    flipped["ci95"] = [None if high is None else -high, None if low is None else -low]
    return flipped
