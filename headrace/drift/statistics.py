"""The drift kernels: exact cells of values on a reference grid, and the statistics computed from counts.

Everything a drift check needs from the current window is a count: per numeric feature, how many values
fall in each cell of a grid made of the reference sample's distinct values and the decile edges (each
grid point is a cell of its own, and so is each open interval between neighbours); per categorical
feature, how many fall in each category bucket. Counts add, so partial results merge exactly, and every
statistic here is a function of counts:

- KS: the reference sample's ECDF is known at every grid point, the current window's follows from the
  cell counts, and the supremum of |F_ref - F_cur| is attained at a grid point or at the last current value
  inside an open cell. `ks_statistic` evaluates exactly the differences `scipy.stats.ks_2samp` evaluates,
  with the same floating-point expression (count/n1 - count/n2), so the statistic is the same number.
- PSI: grid cells never straddle a decile edge, so the decile bin counts are sums of cell counts.
- Jensen-Shannon distance and the chi-square test of homogeneity: on category bucket counts.

`GridIndex` is the hot path. numpy's `searchsorted` costs about 100 ns a value on a 20,000-point grid
(a mispredicted branch per halving); `GridIndex.cells` costs about 11 ns. It maps each value through a
monotone, piecewise-affine function to a slot of a lookup table about eight times the grid's size: a first
level of 4,096 equal buckets over the grid's central range, then within each bucket as many slots as it
has grid points times eight, so dense regions get fine slots and heavy tails cost nothing extra. A slot
holds at most one grid point for all but ~1% of values, and one comparison with that point gives the cell;
values whose slot holds several grid points take `searchsorted`. Because the slot function is monotone
(IEEE subtraction, multiplication by a positive constant, clip/fmax/fmin and rounding all are) and the
table is built by running the same function over the grid, the cells are exactly `searchsorted`'s, for
every input: an unlucky distribution can only cost speed. Each step is one numpy call over a chunk, into
buffers reused chunk after chunk (`Workspace`).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
CountArray = npt.NDArray[np.int64]
IndexArray = npt.NDArray[np.intp]

# PSI and JS treat an empty bucket as holding this share, so that a bucket seen on one side only adds a
# large but finite term (the convention of Evidently and most PSI write-ups).
PSI_EPSILON: Final = 1e-4

# GridIndex tuning: first-level buckets over the grid's central range, table slots per grid point, and the
# share of grid points at each end left out of the first level's range (they still land in the end slots).
_BUCKETS: Final = 4096
_SLOTS_PER_POINT: Final = 8
_TAIL: Final = 0.001


class GridIndex:
    """Cells of values on a sorted grid of distinct finite values g_0 < ... < g_{m-1}.

    Cell 2k+1 is the point g_k; cell 2k is the open interval (g_{k-1}, g_k), with (-inf, g_0) as cell 0 and
    (g_{m-1}, +inf) as cell 2m. -inf and +inf land in cells 0 and 2m; NaN in `nan_cell` (callers count
    missing values apart and take them out again). An empty grid has the single cell 0.
    """

    grid: FloatArray
    size: int
    nan_cell: int
    _low: float
    _scale: float
    _slots_per_bucket: FloatArray
    _bucket_middle: FloatArray
    _base: IndexArray
    _pivot: FloatArray

    def __init__(self, grid: FloatArray) -> None:
        grid = np.ascontiguousarray(grid, dtype=np.float64)
        if grid.size and not (np.all(np.isfinite(grid)) and np.all(grid[1:] > grid[:-1])):
            raise ValueError("a grid must be finite, ascending and without repeats")
        self.grid = grid
        self.size = 2 * grid.size + 1
        m = grid.size
        if m == 0:
            self._low, self._scale = 0.0, 1.0
            self._slots_per_bucket = np.ones(_BUCKETS)
            self._bucket_middle = np.arange(_BUCKETS, dtype=np.float64) + 0.5
            self._base = np.zeros(_BUCKETS + 1, dtype=np.intp)
            self._pivot = np.full(_BUCKETS + 1, np.nan)
            self.nan_cell = 0
            return
        tail = int(_TAIL * m)
        low, high = float(grid[tail]), float(grid[m - 1 - tail])
        self._low = low
        self._scale = _scale(low, high)
        # First pass: how many grid points each first-level bucket gets.
        workspace = Workspace(m)
        position, scratch, bucket, _, _ = workspace.arrays(m)
        self._bucket(grid, True, position, scratch, bucket)
        slots = np.maximum(np.bincount(bucket, minlength=_BUCKETS) * _SLOTS_PER_POINT, 1)
        self._slots_per_bucket = slots.astype(np.float64)
        # A bucket's slots are [start, start + K); position in [-1/2, 1/2] maps to middle + position * K.
        self._bucket_middle = np.cumsum(slots) - slots / 2.0
        table_size = int(slots.sum()) + 1
        per_slot = np.bincount(self._slots(grid, True, workspace), minlength=table_size)
        before = np.concatenate([[0], np.cumsum(per_slot)[:-1]])
        # A slot without grid points is one open cell; with one point g_k, the cell is 2k, 2k+1 or 2k+2 by
        # comparing with g_k; with several, -1 sends the value to searchsorted.
        self._base = (2 * before).astype(np.intp)
        self._pivot = np.full(table_size, np.nan)
        single = per_slot == 1
        self._pivot[single] = grid[before[single]]
        self._base[per_slot > 1] = -1
        self.nan_cell = int(self.cells(np.array([np.nan]))[0])

    def _bucket(
        self, values: FloatArray, finite: bool, position: FloatArray, scratch: FloatArray, bucket: IndexArray
    ) -> None:
        """bucket <- the first-level bucket of each value (its position, rounded); position <- the offset
        from the bucket's centre, in [-1/2, 1/2]. `finite`: no value is NaN (clip would keep a NaN)."""
        with np.errstate(invalid="ignore", over="ignore"):
            np.subtract(values, self._low, out=position)
            np.multiply(position, self._scale, out=position)
        if finite:
            np.clip(position, 0.0, _BUCKETS - 1, out=position)
        else:
            # fmax/fmin: NaN becomes a bound, so every value, NaN too, gets a valid bucket.
            np.fmax(position, 0.0, out=position)
            np.fmin(position, _BUCKETS - 1, out=position)
        _round_to_index(position, bucket, scratch)
        np.subtract(position, scratch, out=position)

    def _slots(self, values: FloatArray, finite: bool, workspace: Workspace) -> IndexArray:
        """The table slot of each value: a monotone function of the value (see the module's docstring)."""
        position, scratch, slot, _, _ = workspace.arrays(values.size)
        self._bucket(values, finite, position, scratch, slot)
        self._slots_per_bucket.take(slot, out=scratch, mode="clip")
        np.multiply(position, scratch, out=position)
        self._bucket_middle.take(slot, out=scratch, mode="clip")
        np.add(position, scratch, out=position)
        _round_to_index(position, slot)
        return slot

    def cells(self, values: FloatArray, workspace: Workspace | None = None) -> IndexArray:
        """The cell of each value (float64, 1-D). With a workspace, the result is a view into it."""
        if workspace is None or workspace.capacity < values.size:
            workspace = Workspace(values.size)
        flag = workspace.arrays(values.size)[4]
        np.isfinite(values, out=flag)
        return self._cells(values, bool(flag.all()), workspace)

    def _cells(self, values: FloatArray, finite: bool, workspace: Workspace) -> IndexArray:
        slot = self._slots(values, finite, workspace)
        _, pivot, _, cell, flag = workspace.arrays(values.size)
        self._base.take(slot, out=cell, mode="clip")
        self._pivot.take(slot, out=pivot, mode="clip")
        np.greater_equal(values, pivot, out=flag)
        np.add(cell, flag, out=cell)
        np.greater(values, pivot, out=flag)
        np.add(cell, flag, out=cell)
        np.less(cell, 0, out=flag)
        if flag.any():
            cell[flag] = self.searchsorted_cells(values[flag])
        return cell

    def searchsorted_cells(self, values: FloatArray) -> IndexArray:
        """The same cells by binary search: the definition `cells` is tested against, and its fallback."""
        index = np.searchsorted(self.grid, values, side="left")
        if self.grid.size == 0:
            return index
        found = self.grid.take(np.minimum(index, self.grid.size - 1)) == values
        found &= index < self.grid.size
        cells: IndexArray = 2 * index + found
        return cells

    def count(self, values: FloatArray, workspace: Workspace | None = None) -> tuple[CountArray, int]:
        """Cell counts of the finite values, and how many values were missing (NaN or infinite)."""
        if workspace is None or workspace.capacity < values.size:
            workspace = Workspace(values.size)
        flag = workspace.arrays(values.size)[4]
        np.isfinite(values, out=flag)
        missing = values.size - int(np.count_nonzero(flag))
        cells = self._cells(values, missing == 0, workspace)
        counts = np.bincount(cells, minlength=self.size).astype(np.int64, copy=False)
        if missing:
            nan = int(np.count_nonzero(np.isnan(values)))
            positive = int(np.count_nonzero(values == np.inf))
            counts[self.nan_cell] -= nan
            counts[self.size - 1] -= positive
            counts[0] -= missing - nan - positive
        return counts, missing


class Workspace:
    """Scratch arrays for `GridIndex.cells`, reused chunk after chunk: no allocation (and no fresh pages to
    fault in) per chunk. One per thread; `capacity` values at most per call."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._reals = (np.empty(capacity), np.empty(capacity))
        self._indices = (np.empty(capacity, dtype=np.intp), np.empty(capacity, dtype=np.intp))
        self._flags = np.empty(capacity, dtype=np.bool_)

    def arrays(
        self, size: int
    ) -> tuple[FloatArray, FloatArray, IndexArray, IndexArray, npt.NDArray[np.bool_]]:
        first, second = self._reals
        slot, cell = self._indices
        return first[:size], second[:size], slot[:size], cell[:size], self._flags[:size]


_MAGIC: Final = 2.0**52
_MAGIC_BITS: Final = int(np.float64(_MAGIC).view(np.int64))


def _scale(low: float, high: float) -> float:
    """(buckets - 1) / (high - low), kept finite and positive: then (x - low) * scale is NaN only for NaN x
    (an overflow gives +-inf, which clip handles), never 0 * inf."""
    span = high - low
    if not high > low:
        return 1.0
    scale = (_BUCKETS - 1) / span if math.isfinite(span) else (_BUCKETS - 1) / 2.0 / (high / 2.0 - low / 2.0)
    return scale if math.isfinite(scale) else 1e300


def _round_to_index(values: FloatArray, out: IndexArray, rounded: FloatArray | None = None) -> None:
    """out <- values rounded to the nearest integer (ties to even), for 0 <= values < 2**51; `rounded`, if
    given, <- the same as floats (else `values` is overwritten). Adding 2**52 leaves the integer in the
    mantissa's low bits: cheap passes where a float-to-int cast costs several times as much. Rounding is
    monotone, which is all that the slot function needs."""
    target = values if rounded is None else rounded
    np.add(values, _MAGIC, out=target)
    np.subtract(target.view(np.int64), _MAGIC_BITS, out=out)
    if rounded is not None:
        np.subtract(rounded, _MAGIC, out=rounded)


# --- statistics from counts --------------------------------------------------------------------------------


def ks_statistic(reference_at_or_below: CountArray, reference_size: int, cell_counts: CountArray) -> float:
    """sup |F_ref - F_cur| from the current window's cell counts on the grid.

    `reference_at_or_below[k]` is how many reference sample values are <= g_k, `reference_size` the sample's
    size. The differences are those `scipy.stats.ks_2samp(reference_sample, current)` evaluates (its ECDFs at
    every value of both samples), written as the same float expression, plus some that repeat one of them
    or are 0; the maximum is therefore the same float.
    """
    current_size = int(cell_counts.sum())
    if current_size == 0 or reference_size == 0:
        raise ValueError("KS needs values on both sides")
    # Reference ECDF per cell: at point g_k and on the open interval just above it, the count <= g_k.
    reference = np.zeros(cell_counts.size, dtype=np.int64)
    reference[1::2] = reference_at_or_below
    reference[2::2] = reference_at_or_below
    # Current ECDF per cell: at a point, the count <= it; on an open interval, the count up to its last value.
    current = np.cumsum(cell_counts)
    differences = reference / reference_size - current / current_size
    return float(max(min(max(-float(differences.min()), 0.0), 1.0), float(differences.max())))


def frequencies(counts: npt.NDArray[np.int64] | npt.NDArray[np.float64]) -> FloatArray:
    total = float(np.sum(counts))
    return np.asarray(counts, dtype=np.float64) / total if total else np.zeros(len(counts))


def psi(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """Population stability index: sum (c - r) ln(c / r) over bins, empty bins counted as PSI_EPSILON."""
    reference = np.where((r := frequencies(np.asarray(reference_counts))) > 0, r, PSI_EPSILON)
    current = np.where((c := frequencies(np.asarray(current_counts))) > 0, c, PSI_EPSILON)
    return float(np.sum((current - reference) * np.log(current / reference)))


def js_distance(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """Jensen-Shannon distance, base 2 (in [0, 1]): `scipy.spatial.distance.jensenshannon(p, q, base=2)`."""
    p = frequencies(np.asarray(reference_counts))
    q = frequencies(np.asarray(current_counts))
    middle = (p + q) / 2.0
    divergence = 0.0
    for side in (p, q):
        present = side > 0
        divergence += float(np.sum(side[present] * np.log2(side[present] / middle[present])))
    return math.sqrt(max(divergence / 2.0, 0.0))


def chi2_homogeneity(
    reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike
) -> tuple[float, float, int]:
    """Pearson's chi-square test that both samples come from one distribution over the buckets.

    The 2 x k contingency table without Yates' correction, buckets empty on both sides left out:
    `scipy.stats.chi2_contingency([reference, current], correction=False)`. Returns (statistic, p, dof).
    """
    table = np.array([reference_counts, current_counts], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    dof = table.shape[1] - 1
    if dof < 1 or np.any(table.sum(axis=1) == 0):
        return 0.0, 1.0, max(dof, 0)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, chi2_sf(statistic, dof), dof


def chi2_sf(statistic: float, dof: int) -> float:
    """P(X >= statistic) for X chi-square with `dof` degrees of freedom: Q(dof/2, statistic/2)."""
    if statistic <= 0.0:
        return 1.0
    return _gamma_upper_regularized(dof / 2.0, statistic / 2.0)


def _gamma_upper_regularized(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a): the series for P when x < a + 1, else a continued fraction."""
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        denominator = a
        while abs(term) > abs(total) * 1e-17:
            denominator += 1.0
            term *= x / denominator
            total += term
        return max(0.0, 1.0 - total * math.exp(log_front))
    # Modified Lentz for Q = e^-x x^a / Gamma(a) * 1/(x+1-a- 1(1-a)/(x+3-a- ...)).
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    fraction = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        step = d * c
        fraction *= step
        if abs(step - 1.0) < 1e-16:
            break
    return min(1.0, math.exp(log_front) * fraction)
