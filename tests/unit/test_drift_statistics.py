"""Drift kernels: exact grid cells, KS from counts equal to scipy's, PSI, Jensen-Shannon and chi-square."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from headrace.drift.statistics import (
    PSI_EPSILON,
    GridIndex,
    chi2_homogeneity,
    chi2_sf,
    js_distance,
    ks_statistic,
    psi,
)

Draw = Callable[[np.random.Generator, int], npt.NDArray[np.float64]]

DISTRIBUTIONS: dict[str, Draw] = {
    "normal": lambda rng, n: rng.normal(10.0, 2.0, n),
    "cauchy": lambda rng, n: rng.standard_cauchy(n),
    "pareto": lambda rng, n: rng.pareto(0.7, n),
    "lognormal_wide": lambda rng, n: rng.lognormal(0.0, 4.0, n),
    "integers_with_ties": lambda rng, n: rng.integers(-3, 12, n).astype(float),
    "uniform_tiny_scale": lambda rng, n: rng.uniform(1e-300, 3e-300, n),
    "bimodal_far_apart": lambda rng, n: np.where(
        rng.random(n) < 0.5, rng.normal(-1e6, 1, n), rng.normal(1e6, 1, n)
    ),
}


def _grid(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    grid: npt.NDArray[np.float64] = np.unique(values[np.isfinite(values)])
    return grid


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_grid_cells_equal_binary_search_on_every_value(name: str) -> None:
    rng = np.random.default_rng(7)
    draw = DISTRIBUTIONS[name]
    index = GridIndex(_grid(draw(rng, 5_000)))
    values = draw(rng, 20_000)
    assert np.array_equal(index.cells(values), index.searchsorted_cells(values))


def test_grid_cells_are_exact_on_and_right_next_to_grid_points() -> None:
    rng = np.random.default_rng(3)
    grid = _grid(rng.standard_cauchy(3_000))
    index = GridIndex(grid)
    values = np.concatenate(
        [
            grid,
            np.nextafter(grid, np.inf),
            np.nextafter(grid, -np.inf),
            [0.0, -0.0, 5e-324, -5e-324, 1e308, -1e308, np.inf, -np.inf],
        ]
    )
    assert np.array_equal(index.cells(values), index.searchsorted_cells(values))
    points = index.cells(grid)
    assert np.array_equal(points, 2 * np.arange(grid.size) + 1)


@pytest.mark.parametrize(
    "grid",
    [
        np.array([2.5]),
        np.array([0.0, 1.0]),
        np.array([-1e308, 1e308]),
        np.array([1e-300, 1e300]),
        np.array([1.0, np.nextafter(1.0, 2.0)]),
        np.array([5e-324, 1e-323, 1.5e-323]),
    ],
    ids=["one_point", "two_points", "range_overflows", "huge_range", "adjacent_floats", "subnormal_span"],
)
def test_degenerate_grids_still_give_exact_cells(grid: npt.NDArray[np.float64]) -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            grid,
            np.nextafter(grid, np.inf),
            np.nextafter(grid, -np.inf),
            rng.normal(0, 1e3, 500),
            [0.0, np.inf],
        ]
    )
    index = GridIndex(grid)
    assert np.array_equal(index.cells(values), index.searchsorted_cells(values))


def test_an_empty_grid_has_one_cell() -> None:
    index = GridIndex(np.array([]))
    counts, missing = index.count(np.array([1.0, -3.0, np.nan]))
    assert counts.tolist() == [2] and missing == 1


def test_grids_must_be_ascending_finite_and_distinct() -> None:
    for bad in ([1.0, 1.0], [2.0, 1.0], [0.0, np.inf], [np.nan]):
        with pytest.raises(ValueError, match="grid"):
            GridIndex(np.array(bad))


def test_count_leaves_out_nan_and_infinite_values_as_missing() -> None:
    rng = np.random.default_rng(1)
    index = GridIndex(_grid(rng.normal(size=1_000)))
    values = rng.normal(size=3_000)
    values[::7] = np.nan
    values[::11] = np.inf
    values[::13] = -np.inf
    counts, missing = index.count(values)
    finite = values[np.isfinite(values)]
    expected = np.bincount(index.searchsorted_cells(finite), minlength=index.size)
    assert counts.tolist() == expected.tolist()
    assert missing == values.size - finite.size


def _ks_from_counts(
    sample: npt.NDArray[np.float64], current: npt.NDArray[np.float64], extra_points: npt.NDArray[np.float64]
) -> float:
    grid = np.union1d(sample, extra_points)
    index = GridIndex(grid)
    counts, _ = index.count(current)
    at_or_below = np.searchsorted(sample, grid, side="right")
    return ks_statistic(at_or_below, sample.size, counts)


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_ks_statistic_from_counts_equals_scipy(name: str, shift: float) -> None:
    rng = np.random.default_rng(11)
    draw = DISTRIBUTIONS[name]
    sample = np.sort(draw(rng, 4_000))
    current = draw(rng, 3_000) * (1.0 + shift) + shift
    # Decile edges of other data: grid points that are not sample values must not change the statistic.
    edges = np.unique(np.quantile(draw(rng, 1_000), np.arange(1, 10) / 10, method="inverted_cdf"))
    ours = _ks_from_counts(sample, current, edges)
    assert ours == pytest.approx(stats.ks_2samp(sample, current).statistic, abs=1e-12)


@pytest.mark.parametrize(
    ("sample", "current"),
    [
        ([3.0] * 50, [3.0] * 20),
        ([3.0] * 50, [4.0] * 20),
        ([1.0, 2.0, 3.0], [2.0]),
        ([1.0, 2.0, 3.0], [-10.0]),
        ([5.0], [5.0, 6.0, 4.0]),
    ],
    ids=["constant_same", "constant_moved", "one_value_tied", "one_value_below", "one_point_sample"],
)
def test_ks_statistic_on_constant_and_tiny_samples_equals_scipy(
    sample: list[float], current: list[float]
) -> None:
    ours = _ks_from_counts(np.array(sample), np.array(current), np.array([]))
    assert ours == pytest.approx(stats.ks_2samp(sample, current).statistic, abs=1e-12)


def test_ks_statistic_needs_values_on_both_sides() -> None:
    with pytest.raises(ValueError, match="both sides"):
        ks_statistic(np.array([1]), 1, np.zeros(3, dtype=np.int64))


def test_psi_of_identical_distributions_is_zero() -> None:
    assert psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0, abs=1e-15)


def test_psi_known_value() -> None:
    # (0.25 - 0.5) ln(0.25 / 0.5) + (0.75 - 0.5) ln(0.75 / 0.5)
    expected = 0.25 * math.log(2.0) + 0.25 * math.log(1.5)
    assert psi([50, 50], [25, 75]) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.2746530722, rel=1e-9)


def test_psi_counts_an_empty_bin_as_epsilon() -> None:
    expected = (0.5 - 1.0) * math.log(0.5) + (0.5 - PSI_EPSILON) * math.log(0.5 / PSI_EPSILON)
    assert psi([100, 0], [50, 50]) == pytest.approx(expected, rel=1e-12)
    assert psi([50, 50], [100, 0]) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("reference", "current"),
    [([5, 3, 2, 0], [1, 1, 1, 7]), ([1, 0], [0, 1]), ([4, 4], [4, 4]), ([10, 0, 3], [0, 0, 9])],
)
def test_js_distance_equals_scipy_base_2(reference: list[int], current: list[int]) -> None:
    expected = jensenshannon(np.array(reference, float), np.array(current, float), base=2)
    assert js_distance(reference, current) == pytest.approx(expected, abs=1e-12)


def test_chi2_homogeneity_equals_scipy_without_yates_and_skips_empty_buckets() -> None:
    reference, current = [500, 300, 200, 0, 0], [40, 35, 30, 5, 0]
    statistic, pvalue, dof = chi2_homogeneity(reference, current)
    expected = stats.chi2_contingency(np.array([reference[:4], current[:4]]), correction=False)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert pvalue == pytest.approx(expected.pvalue, rel=1e-10)
    assert dof == expected.dof == 3


def test_chi2_of_a_single_bucket_is_no_evidence() -> None:
    assert chi2_homogeneity([10, 0], [3, 0]) == (0.0, 1.0, 0)


@pytest.mark.parametrize("dof", [1, 2, 3, 7, 10, 51, 200])
def test_chi2_survival_equals_scipy(dof: int) -> None:
    for x in np.concatenate([np.linspace(0.01, 4 * dof + 40, 60), [1e-6, 1e3]]):
        expected = stats.chi2.sf(x, dof)
        if expected > 1e-300:
            assert chi2_sf(float(x), dof) == pytest.approx(expected, rel=1e-10), (x, dof)
