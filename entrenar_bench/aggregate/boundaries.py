"""Group-sequential boundaries: two-sided, symmetric, from a Lan–DeMets alpha-spending function.

At looks with information fractions 0 < t_1 < … < t_K ≤ 1 (runs so far over ``--max-runs``) the standardised
statistics are jointly normal under H0 with corr(Z_j, Z_k) = √(t_j / t_k), the canonical joint distribution
(Jennison & Turnbull 2000, §3.1). A spending function α(t) (α(0) = 0, α(1) = α) gives the boundary c_k of look k:

    P₀(|Z_1| < c_1, …, |Z_{k−1}| < c_{k−1}, |Z_k| ≥ c_k) = α(t_k) − α(t_{k−1})

Each side spends half (gsDesign's ``sfLDOF`` / ``sfLDPocock`` at one-sided α/2):

    O'Brien–Fleming type (Lan & DeMets 1983):  α(t) = 2 · (2 − 2Φ(z_{1−α/4} / √t))
    Pocock type:                               α(t) = α · ln(1 + (e − 1) t)

The crossing probabilities are integrated on gsDesign's Simpson grid (the ``gsdesign`` package: ``h1`` and
``hupdate``, gsDesign's C routines ported by its maintainer); each c_k is found by root-finding (brentq).
The repeated p-value of look k (J&T §9.1) is the smallest α' whose boundary c_k(α') the statistic reaches.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np
from gsdesign import h1, hupdate
from scipy import optimize, stats

from entrenar_bench.aggregate.sequential_design import SPENDING
GRID = 18  # gsDesign's default r: 6r − 1 grid points per look
SMALLEST_P = 1e-12


def spent(t: float, alpha: float, spending: str = "obf") -> float:
    """α(t): the two-sided type-I error spent by information fraction ``t`` (see the module docstring)."""
    if t <= 0:
        return 0.0
    t = min(t, 1.0)
    if spending == "obf":
        return float(4 * stats.norm.sf(stats.norm.isf(alpha / 4) / math.sqrt(t)))
    if spending == "pocock":
        return float(alpha * math.log(1 + (math.e - 1) * t))
    raise ValueError(f"unknown spending function {spending!r}; known: {', '.join(SPENDING)}")


def _exit_beyond(c: float, t: float, grid: tuple | None, t_prev: float) -> float:
    """P₀(continue to look k−1, |Z_k| ≥ c): the two tails, each the grid's density times a normal tail."""
    if grid is None:
        return float(2 * stats.norm.sf(c))
    z_prev, _, h_prev = grid
    scale = math.sqrt(t - t_prev)
    upper = stats.norm.sf((c * math.sqrt(t) - z_prev * math.sqrt(t_prev)) / scale)
    lower = stats.norm.cdf((-c * math.sqrt(t) - z_prev * math.sqrt(t_prev)) / scale)
    return float(np.dot(h_prev, upper + lower))


def _advance(grid: tuple | None, c: float, t: float, t_prev: float) -> tuple:
    """The sub-density of Z_k on (−c, c) for paths that have not crossed."""
    if grid is None:
        return h1(GRID, 0.0, t, -c, c)
    return hupdate(GRID, 0.0, t, -c, c, 0.0, t_prev, grid)


def crossing_probabilities(fractions: Sequence[float], bounds: Sequence[float]) -> list[float]:
    """P₀ of first crossing ``|Z_k| ≥ bounds[k]`` at each look (their sum: the design's type-I error)."""
    grid, t_prev, out = None, 0.0, []
    for t, c in zip(fractions, bounds):
        out.append(_exit_beyond(c, t, grid, t_prev))
        grid, t_prev = _advance(grid, c, t, t_prev), t
    return out


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    fractions = tuple(float(t) for t in fractions)
    if not fractions or any(b <= a for a, b in zip(fractions, fractions[1:])) or fractions[0] <= 0 \
            or fractions[-1] > 1:
        raise ValueError(f"information fractions must increase within (0, 1], got {fractions}")
    return fractions


@functools.lru_cache(maxsize=4096)
def _bounds(fractions: tuple[float, ...], alpha: float, spending: str) -> tuple[float, ...]:
    grid, t_prev, spent_before, out = None, 0.0, 0.0, []
    for t in fractions:
        target = spent(t, alpha, spending) - spent_before
        if target <= 1e-15:  # nothing to spend at this look: a boundary no statistic reaches
            c = 40.0
        else:
            c = optimize.brentq(lambda c, t=t, grid=grid, t_prev=t_prev, target=target:
                                _exit_beyond(c, t, grid, t_prev) - target, 1e-6, 40.0, xtol=1e-10)
        out.append(c)
        spent_before += target
        grid, t_prev = _advance(grid, c, t, t_prev), t
    return tuple(out)


def boundaries(fractions: Sequence[float], alpha: float = 0.05, spending: str = "obf") -> tuple[float, ...]:
    """The two-sided critical values c_1..c_K on the z scale (cached: the looks of a design repeat)."""
    return _bounds(_check_fractions(fractions), float(alpha), spending)


def nominal_level(c: float) -> float:
    """The two-sided p-value a look's boundary c corresponds to: 2(1 − Φ(c))."""
    return float(2 * stats.norm.sf(c))


def z_of(p_value: float) -> float:
    """A two-sided p-value on the z scale, Φ⁻¹(1 − p/2) (a t-test's p matched to the normal boundaries)."""
    return float(stats.norm.isf(max(p_value, 1e-300) / 2))


def repeated_p_value(z: float, fractions: Sequence[float], spending: str = "obf") -> float:
    """The smallest α' at which the design's boundary at the last of ``fractions`` is reached by ``|z|``."""
    fractions = _check_fractions(fractions)
    z = abs(z)

    def gap(log_alpha: float) -> float:
        return _bounds(fractions, math.exp(log_alpha), spending)[-1] - z

    lo, hi = math.log(SMALLEST_P), math.log(0.999999)
    if gap(lo) <= 0:
        return SMALLEST_P
    if gap(hi) > 0:
        return 1.0
    return float(math.exp(optimize.brentq(gap, lo, hi, xtol=1e-6)))
