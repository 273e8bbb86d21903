"""Group-sequential boundaries against published tables (α = 0.05 two-sided, equally spaced looks)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from entrenar_bench.aggregate.boundaries import (
    boundaries, crossing_probabilities, nominal_level, repeated_p_value, spent, z_of,
)

# Lan–DeMets O'Brien–Fleming-type spending (gsDesign sfLDOF, each side α/2), as gsDesign and ldbounds print
# them and Jennison & Turnbull (2000, ch. 7) tabulate them.
LD_OBF = {2: (2.9626, 1.9686), 3: (3.7103, 2.5114, 1.9930), 4: (4.3326, 2.9631, 2.3590, 2.0141),
          5: (4.8769, 3.3569, 2.6803, 2.2898, 2.0310)}
# Lan–DeMets Pocock-type spending, K = 5.
LD_POCOCK_5 = (2.438, 2.427, 2.410, 2.397, 2.386)
# The classical constants (Jennison & Turnbull Table 2.1 and 2.3): Pocock's c_k = C_P, O'Brien–Fleming's
# c_k = C_B √(K/k); each design's overall type-I error is α.
POCOCK = {2: 2.178, 3: 2.289, 4: 2.361, 5: 2.413}
OBRIEN_FLEMING = {2: 1.977, 3: 2.004, 4: 2.024, 5: 2.040}


def equal(k: int) -> list[float]:
    return [i / k for i in range(1, k + 1)]


@pytest.mark.parametrize("k", sorted(LD_OBF))
def test_lan_demets_obrien_fleming_boundaries_match_the_tables(k):
    assert boundaries(equal(k)) == pytest.approx(LD_OBF[k], abs=2e-4)


def test_lan_demets_pocock_boundaries_match_the_table():
    assert boundaries(equal(5), spending="pocock") == pytest.approx(LD_POCOCK_5, abs=1e-3)


@pytest.mark.parametrize("k", sorted(POCOCK))
def test_the_classical_designs_keep_their_type_one_error(k):
    """The integration itself: the tables' constants give α (they are rounded to 3 decimals: ±2e-4)."""
    assert sum(crossing_probabilities(equal(k), [POCOCK[k]] * k)) == pytest.approx(0.05, abs=2e-4)
    obf = [OBRIEN_FLEMING[k] * (k / i) ** 0.5 for i in range(1, k + 1)]
    assert sum(crossing_probabilities(equal(k), obf)) == pytest.approx(0.05, abs=2e-4)


def test_the_crossing_probabilities_agree_with_a_monte_carlo_of_the_canonical_distribution():
    """Unequal looks, checked against brownian motion drawn at the fractions (independent of the grid)."""
    fractions = [0.3, 0.45, 0.8, 1.0]
    bounds = boundaries(fractions)
    rng = np.random.default_rng(1)
    steps = rng.normal(size=(400_000, 4)) * np.sqrt(np.diff([0, *fractions]))
    z = np.abs(np.cumsum(steps, axis=1) / np.sqrt(fractions))
    crossed = (z >= np.asarray(bounds)).any(axis=1).mean()
    assert crossed == pytest.approx(0.05, abs=3 * np.sqrt(0.05 * 0.95 / 400_000))
    assert sum(crossing_probabilities(fractions, bounds)) == pytest.approx(spent(1.0, 0.05))


def test_spending_functions_spend_alpha_by_the_end_and_obf_little_early():
    assert spent(1.0, 0.05, "obf") == pytest.approx(0.05)
    assert spent(1.0, 0.05, "pocock") == pytest.approx(0.05)
    assert spent(0.2, 0.05, "obf") < 1e-5 < spent(0.2, 0.05, "pocock")
    with pytest.raises(ValueError):
        spent(0.5, 0.05, "haybittle")


def test_one_look_is_the_fixed_design():
    assert boundaries([1.0]) == pytest.approx([stats.norm.isf(0.025)])


def test_repeated_p_value_inverts_the_boundary():
    fractions = equal(4)
    for alpha in (0.001, 0.01, 0.05, 0.2):
        c = boundaries(fractions[:3] + [1.0], alpha)[2]
        assert repeated_p_value(c, fractions[:3]) == pytest.approx(alpha, rel=1e-3)
    assert repeated_p_value(0.0, fractions) == 1.0
    assert nominal_level(z_of(0.0123)) == pytest.approx(0.0123)


def test_fractions_must_increase():
    with pytest.raises(ValueError):
        boundaries([0.5, 0.5, 1.0])
