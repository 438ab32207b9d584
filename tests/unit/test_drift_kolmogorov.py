"""KS p-values without scipy: the same methods and answers as scipy.stats.ks_2samp (two-sided)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import numpy.typing as npt
import pytest
from scipy import special, stats

from headrace.drift.kolmogorov import MAX_AUTO_N, ks_2samp_pvalue, kstwo_sf, smirnov_sf


@pytest.mark.parametrize("n", [1, 2, 5, 30, 140, 141, 500, 2_000, 19_600, 60_000])
def test_one_sample_two_sided_survival_equals_scipy_kstwo(n: int) -> None:
    points = np.concatenate([np.linspace(0.001, 0.999, 60), [0.5 / n, 0.75 / n, 1.0 / n, 1.0 - 1.0 / n]])
    for d in points:
        expected = stats.kstwo.sf(d, n)
        if expected > 1e-300:
            assert kstwo_sf(float(d), n) == pytest.approx(expected, rel=1e-9, abs=1e-300), (n, d)


@pytest.mark.parametrize("n", [1, 7, 140, 1_000, 20_000])
def test_one_sided_smirnov_equals_scipy(n: int) -> None:
    for d in np.linspace(0.001, 0.999, 80):
        expected = special.smirnov(n, d)
        if expected > 1e-300:
            assert smirnov_sf(n, float(d)) == pytest.approx(expected, rel=1e-9), (n, d)


def _samples(
    n1: int, n2: int, shift: float, seed: int = 0
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=n1), rng.normal(shift, 1.0, size=n2)


@pytest.mark.parametrize(
    ("n1", "n2", "shift"),
    [
        (5, 7, 0.8),
        (3, 40, 1.0),
        (20, 20, 0.5),
        (100, 37, 0.3),
        (1_000, 999, 0.1),
        (400, 400, 0.2),
        (2_000, 3_000, 0.08),
        (MAX_AUTO_N + 1, 500, 0.1),
        (20_000, 6_000, 0.03),
    ],
)
@pytest.mark.parametrize("method", ["auto", "exact", "asymp"])
def test_two_sample_pvalue_and_method_match_scipy(n1: int, n2: int, shift: float, method: str) -> None:
    reference, current = _samples(n1, n2, shift)
    expected = stats.ks_2samp(reference, current, method=method)
    pvalue, used = ks_2samp_pvalue(float(expected.statistic), n1, n2, method)  # type: ignore[arg-type]
    assert used == (
        "exact" if method == "exact" or (method == "auto" and max(n1, n2) <= MAX_AUTO_N) else "asymp"
    )
    # scipy's exact path for unequal sizes computes 1 - P(inside) and loses relative accuracy below ~1e-7.
    if expected.pvalue > 1e-7:
        assert pvalue == pytest.approx(expected.pvalue, rel=1e-9)
    else:
        assert pvalue == pytest.approx(expected.pvalue, abs=1e-9)


def _brute_force_pvalue(n1: int, n2: int, d: float) -> Fraction:
    """Share of all orderings of n1 x's and n2 y's whose ECDF difference reaches d (exact rationals)."""
    lcm = n1 * n2 // math.gcd(n1, n2)
    h = round(d * lcm)
    outside = 0
    total = 0
    for xs in itertools.combinations(range(n1 + n2), n1):
        chosen = set(xs)
        i = j = 0
        crossed = False
        for step in range(n1 + n2):
            if step in chosen:
                i += 1
            else:
                j += 1
            if abs(i * (lcm // n1) - j * (lcm // n2)) >= h:
                crossed = True
                break
        outside += crossed
        total += 1
    return Fraction(outside, total)


@pytest.mark.parametrize(("n1", "n2"), [(4, 6), (6, 4), (3, 8), (5, 5), (7, 5)])
def test_exact_pvalue_equals_counting_every_path(n1: int, n2: int) -> None:
    lcm = n1 * n2 // math.gcd(n1, n2)
    for h in range(1, lcm + 1, max(1, lcm // 12)):
        d = h / lcm
        pvalue, used = ks_2samp_pvalue(d, n1, n2, "exact")
        assert used == "exact"
        assert pvalue == pytest.approx(float(_brute_force_pvalue(n1, n2, d)), rel=1e-12, abs=1e-15), (h, lcm)


def test_exact_pvalue_keeps_relative_accuracy_far_in_the_tail() -> None:
    # All 6 x's below all 9 y's: one ordering of C(15, 6) = 5005 crosses d = 1, and so does its mirror image.
    pvalue, _ = ks_2samp_pvalue(1.0, 6, 9, "exact")
    assert pvalue == pytest.approx(2 / 5005, rel=1e-12)
    tiny, _ = ks_2samp_pvalue(1.0, 60, 90, "exact")
    assert tiny == pytest.approx(2 / math.comb(150, 60), rel=1e-9)


def test_exact_falls_back_to_asymp_when_the_lattice_is_too_large() -> None:
    _, used = ks_2samp_pvalue(0.01, 100_003, 99_991, "exact")
    assert used == "asymp"


def test_pvalue_of_zero_statistic_is_one() -> None:
    assert ks_2samp_pvalue(0.0, 30, 40) == (1.0, "exact")
    assert ks_2samp_pvalue(0.0, 30_000, 40_000)[0] == 1.0


def test_empty_samples_have_no_pvalue() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        ks_2samp_pvalue(0.5, 0, 10)
