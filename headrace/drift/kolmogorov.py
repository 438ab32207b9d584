"""P-values of the two-sample Kolmogorov-Smirnov statistic, in plain numpy (no scipy in a Lambda layer).

`ks_2samp_pvalue` follows `scipy.stats.ks_2samp(..., alternative="two-sided")` (scipy 1.17) method by method:

- "auto": "exact" when both samples have at most `MAX_AUTO_N` values, else "asymp" (scipy's rule).
- "exact": the share of lattice paths that leave the band |i/n1 - j/n2| < d (Hodges 1958), with d rounded
  to a multiple of 1/lcm(n1, n2) as scipy does. Equal sizes use the closed alternating sum; unequal sizes a
  row-by-row path count (each row is one cumulative sum over the band), rescaled so nothing overflows. When
  lcm(n1, n2) is too large for the lattice, scipy switches to "asymp", and so does this.
- "asymp": scipy's asymptotic choice, the one-sample two-sided distribution at n = round(n1*n2/(n1+n2)),
  `kstwo.sf(d, n)`, evaluated with the algorithm selection of Simard and L'Ecuyer (2011) that scipy uses:
  Ruben-Gambino closed forms at the ends, the Durbin matrix (Marsaglia, Tsang and Wang 2003), the Pelz-Good
  expansion, and twice the exact one-sided Smirnov tail (Birnbaum-Tingey sum) for the upper tail. Where
  scipy uses Pomeranz's recursion (n <= 140, moderate d) this uses the Durbin matrix, which computes the
  same exact probability.

Agreement with scipy is to floating-point rounding of different but exact formulas (tests check 1e-9
relative where p > 1e-12), not bit for bit.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

KsMethod = Literal["auto", "exact", "asymp"]

# scipy.stats.ks_2samp: 'auto' tries the exact distribution when both samples are at most this large.
MAX_AUTO_N: Final = 10_000
_INT32_MAX: Final = 2**31 - 1
_LOG2: Final = math.log(2.0)


def ks_2samp_pvalue(
    statistic: float, n1: int, n2: int, method: KsMethod = "auto"
) -> tuple[float, Literal["exact", "asymp"]]:
    """Two-sided p-value of the KS statistic for samples of `n1` and `n2` values, and the method used."""
    if n1 < 1 or n2 < 1:
        raise ValueError("the KS test needs at least one value in each sample")
    g = math.gcd(n1, n2)
    n1g, n2g = n1 // g, n2 // g
    automatic: Literal["exact", "asymp"] = "exact" if max(n1, n2) <= MAX_AUTO_N else "asymp"
    mode = automatic if method == "auto" else method
    if mode == "exact" and n1g >= _INT32_MAX / n2g:
        mode = "asymp"
    if mode == "exact":
        probability = _exact_two_sided(statistic, n1, n2, n1g, n2g)
        if probability is not None:
            return probability, "exact"
        mode = "asymp"
    larger, smaller = max(n1, n2), min(n1, n2)
    effective = float(larger) * float(smaller) / (float(larger) + float(smaller))
    return _clip(kstwo_sf(statistic, round(effective))), mode


def _clip(p: float) -> float:
    return min(max(float(p), 0.0), 1.0)


# --- exact two-sample distribution ------------------------------------------------------------------------


def _exact_two_sided(statistic: float, n1: int, n2: int, n1g: int, n2g: int) -> float | None:
    lcm = n1g * n2
    h = round(statistic * lcm)
    if h == 0:
        return 1.0
    probability = _outside_square(n1, h) if n1 == n2 else _outside_band(n1, n2, n1g, n2g, h)
    # Rounding can overshoot 1 by an ulp or two where every path leaves the band (scipy then gives up on
    # "exact"); anything further off means the computation failed.
    if not math.isfinite(probability) or not 0.0 <= probability <= 1.0 + 1e-12:
        return None
    return min(probability, 1.0)


def _outside_square(n: int, h: int) -> float:
    """P(D_{n,n} >= h/n) = 2 * sum_k (-1)^(k+1) C(2n, n-kh) / C(2n, n), summed innermost-first.

    Each ratio C(2n, n-kh)/C(2n, n-(k-1)h) is a product of h simple factors, so the alternating sum is
    evaluated as a1*(1 - a2*(1 - a3*(...))) without forming large binomials or cancelling them.
    """
    total = 0.0
    for k in range(n // h, -1, -1):
        ratio = 1.0
        for j in range(h):
            ratio = (n - k * h - j) * ratio / (n + k * h + j + 1)
        total = ratio * (1.0 - total)
    return 2.0 * total


def _outside_band(n1: int, n2: int, n1g: int, n2g: int, h: int) -> float:
    """Share of monotone lattice paths (0,0)->(n1,n2) that reach |i*n2g - j*n1g| >= h somewhere.

    Row i holds the counts of paths that reach (i, j) without having left the band; within a row the band is
    a contiguous j-range, and a path enters row i from row i-1 and then moves along it, so row i is the
    running sum of row i-1 over its own range (one in-place cumsum). A path leaves the band once, by a step
    of i past the band's low end or a step of j past its high end, and is then counted with all its
    completions. Summing those positive terms (in logs, each relative to C(n1+n2, n1)) keeps small p-values
    accurate: there is no 1 - P(inside). Counts are rescaled when they grow large, the scale kept as a log.
    """
    if n1 > n2:
        n1, n2, n1g, n2g = n2, n1, n2g, n1g
    paths = _BandPaths(n1, n2, n1g, n2g, h)
    for i in range(n1 + 1):
        if i and not paths.advance(i):
            break
        paths.leave_upwards(i)
    return paths.outside()


class _BandPaths:
    def __init__(self, n1: int, n2: int, n1g: int, n2g: int, h: int) -> None:
        self.n1, self.n2, self.n1g, self.n2g, self.h = n1, n2, n1g, n2g, h
        self.lf: list[float] = _log_factorials(n1 + n2).tolist()
        self.log_all = self.lf[n1 + n2] - self.lf[n1] - self.lf[n2]
        self.exits: list[float] = []
        self.log_scale = 0.0
        # counts[j] for j in [low, high]: paths to (i, j) that never left the band.
        self.counts = np.zeros(n2 + 2)
        self.low, self.high = 0, min(n2, -((-h) // n1g) - 1)
        self.counts[: self.high + 1] = 1.0

    def _exit(self, i: int, j: int, count: float) -> None:
        left, up = self.n1 - i, self.n2 - j
        completions = self.lf[left + up] - self.lf[left] - self.lf[up]
        self.exits.append(math.log(count) + self.log_scale + completions - self.log_all)

    def advance(self, i: int) -> bool:
        """Row i from row i-1; False when no path is left inside the band."""
        low, high, counts = self.low, self.high, self.counts
        new_low = max(0, (i * self.n2g - self.h) // self.n1g + 1)
        new_high = min(self.n2, -(-(i * self.n2g + self.h) // self.n1g) - 1)
        # Steps of i from (i-1, k), k below the new low end, leave the band at (i, k).
        for k in range(low, min(new_low, high + 1)):
            if counts[k] > 0.0:
                self._exit(i, k, float(counts[k]))
        if new_high < new_low or new_low > high:
            return False
        counts[new_low : high + 1].cumsum(out=counts[new_low : high + 1])
        if new_high > high:
            counts[high + 1 : new_high + 1] = counts[high]
        self.low, self.high = new_low, new_high
        peak = float(counts[new_high])
        if peak > 1e250:
            counts[new_low : new_high + 1] /= peak
            self.log_scale += math.log(peak)
        return peak > 0.0

    def leave_upwards(self, i: int) -> None:
        # A step of j from (i, high) leaves the band at (i, high + 1).
        if self.high < self.n2 and self.counts[self.high] > 0.0:
            self._exit(i, self.high + 1, float(self.counts[self.high]))

    def outside(self) -> float:
        if not self.exits:
            return 0.0
        peak = max(self.exits)
        return math.exp(peak) * math.fsum(math.exp(t - peak) for t in self.exits)


# --- the one-sample two-sided distribution (scipy's kstwo) ------------------------------------------------


def kstwo_sf(d: float, n: int) -> float:
    """P(D_n >= d) for the two-sided one-sample KS statistic of n values (Simard and L'Ecuyer's selection)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    if d >= 1.0:
        return 0.0
    if d <= 0.0 or n * d <= 0.5:
        return 1.0
    if n * d <= 1.0:
        # Ruben-Gambino: P(D_n <= d) = n!/n^n (2nd - 1)^n for 1/2n <= d <= 1/n.
        return _clip(1.0 - math.exp(_log_factorial_over_power(n) + n * math.log(2.0 * n * d - 1.0)))
    if n * d >= n - 1:
        return _clip(2.0 * (1.0 - d) ** n)
    return _clip(_kstwo_sf_middle(d, n))


def _kstwo_sf_middle(d: float, n: int) -> float:
    n_d_squared = n * d * d
    # Upper tail: twice the one-sided tail (the two one-sided events cannot both happen for d >= 1/2, and
    # hardly do where n d^2 is large).
    if d >= 0.5:
        return 2.0 * smirnov_sf(n, d)
    if n <= 140:
        return 1.0 - _durbin_cdf(n, d) if n_d_squared <= 4.0 else 2.0 * smirnov_sf(n, d)
    if n_d_squared >= 370.0:
        return 0.0
    if n_d_squared >= 2.2:
        return 2.0 * smirnov_sf(n, d)
    if n <= 100_000 and n * d**1.5 <= 1.4:
        return 1.0 - _durbin_cdf(n, d)
    return 1.0 - _pelz_good_cdf(n, d)


def _log_factorial_over_power(n: int) -> float:
    """log(n! / n^n)."""
    return math.lgamma(n + 1) - n * math.log(n)


@lru_cache(maxsize=16)
def _log_factorials(n: int) -> npt.NDArray[np.float64]:
    """log(k!) for k = 0..n; cached because a drift check asks for the same n for every feature."""
    return np.array([math.lgamma(k + 1.0) for k in range(n + 1)])


def smirnov_sf(n: int, d: float) -> float:
    """One-sided P(D_n^+ >= d), exactly (Birnbaum and Tingey 1951), summed in log space.

    P = d * sum_{j=0}^{floor(n(1-d))} C(n, j) (1 - d - j/n)^(n-j) (d + j/n)^(j-1)
    """
    if d <= 0.0:
        return 1.0
    if d >= 1.0:
        return 0.0
    nd = n * d
    last = math.floor(n - nd)
    j: npt.NDArray[np.float64] = np.arange(last + 1, dtype=np.float64)
    below = n - j - nd
    keep = below > 0.0
    j, below = j[keep], below[keep]
    if j.size == 0:
        return 0.0
    factorials = _log_factorials(n)
    jj = j.astype(np.int64)
    log_terms = (
        factorials[n]
        - factorials[jj]
        - factorials[n - jj]
        + (n - j) * (np.log(below) - math.log(n))
        + (j - 1.0) * (np.log(j + nd) - math.log(n))
    )
    peak = float(log_terms.max())
    return float(d * math.exp(peak) * np.exp(log_terms - peak).sum())


def _durbin_cdf(n: int, d: float) -> float:
    """P(D_n < d) by Durbin's matrix (Marsaglia, Tsang and Wang 2003): n!/n^n * (H^n)[k-1, k-1]."""
    k = math.ceil(n * d)
    h = k - n * d
    size = 2 * k - 1
    # H[i, j] = 1/(i - j + 1)! on and below the first superdiagonal, corrected in the first column and
    # the last row for the fractional part h.
    factorial_inverse = np.array([1.0 / math.factorial(i) if i < 171 else 0.0 for i in range(size + 1)])
    rows, cols = np.indices((size, size))
    steps = rows - cols + 1
    matrix = np.where(steps >= 0, factorial_inverse[np.clip(steps, 0, size)], 0.0)
    powers = h ** np.arange(1, size + 1)
    matrix[:, 0] -= powers * factorial_inverse[1 : size + 1]
    matrix[-1, :] -= powers[::-1] * factorial_inverse[1 : size + 1][::-1]
    if 2.0 * h - 1.0 > 0.0:
        matrix[-1, 0] += (2.0 * h - 1.0) ** size * factorial_inverse[size]
    result, exponent = _matrix_power(matrix, n)
    value = float(result[k - 1, k - 1])
    if value <= 0.0:
        return 0.0
    return math.exp(math.log(value) + exponent * _LOG2 + _log_factorial_over_power(n))


def _matrix_power(matrix: npt.NDArray[np.float64], power: int) -> tuple[npt.NDArray[np.float64], int]:
    """matrix**power as (mantissa matrix, binary exponent), rescaled so that nothing overflows."""
    result = np.eye(matrix.shape[0])
    result_exponent = 0
    base, base_exponent = matrix.copy(), 0
    while power:
        if power & 1:
            result = result @ base
            result_exponent += base_exponent
            result, shift = _rescale(result)
            result_exponent += shift
        power >>= 1
        if power:
            base = base @ base
            base_exponent *= 2
            base, shift = _rescale(base)
            base_exponent += shift
    return result, result_exponent


def _rescale(matrix: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], int]:
    peak = float(np.abs(matrix).max())
    if peak == 0.0 or not math.isfinite(peak):
        return matrix, 0
    shift = math.frexp(peak)[1]
    return np.ldexp(matrix, -shift), shift


_PI2: Final = math.pi**2
_PI4: Final = math.pi**4
_PI6: Final = math.pi**6
_SQRT_2PI: Final = math.sqrt(2.0 * math.pi)


def _pelz_good_cdf(n: int, d: float) -> float:
    """P(D_n <= d) by the Pelz-Good (1976) expansion K0 + K1/sqrt(n) + K2/n + K3/n^1.5 in z = d*sqrt(n)."""
    z = math.sqrt(n) * d
    z2 = z * z
    if -_PI2 / 8.0 / z2 < -708.0:
        return 0.0
    count = math.ceil(16.0 * z / math.pi)
    odd = (2.0 * np.arange(1, count + 1) - 1.0) ** 2
    decay = np.exp(-odd * _PI2 / (8.0 * z2))
    k0 = decay.sum()
    k1 = ((_PI2 / 4.0) * odd - z2) @ decay
    k2 = ((6.0 * z2**3 + 2.0 * z2**2) + (2.0 * z2**2 - 5.0 * z2) * (_PI2 / 4.0) * odd) @ decay
    k2 += (_PI4 * (1.0 - 2.0 * z2) / 16.0) * (odd**2 @ decay)
    k3 = (
        (-30.0 * z2**3 - 90.0 * z2**4)
        + (_PI2 * (135.0 * z2**2 - 96.0 * z2**3) / 4.0) * odd
        + (_PI4 * (-60.0 * z2 + 212.0 * z2**2) / 16.0) * odd**2
        + (_PI6 * (5.0 - 30.0 * z2) / 64.0) * odd**3
    ) @ decay
    terms = np.array([k0, k1, k2, k3]) * _SQRT_2PI
    terms /= np.array([z, 6.0 * z2**2, 72.0 * z**7, 6480.0 * z2**5])
    whole = np.arange(1, count + 1, dtype=np.float64) ** 2
    weights = np.exp(-whole * _PI2 / (2.0 * z2))
    terms[2] += (whole @ weights) * _PI2 * _SQRT_2PI / (-36.0 * z**3)
    terms[3] += ((3.0 * z2 - _PI2 * whole) * whole) @ weights * _PI2 * _SQRT_2PI / (216.0 * z2**3)
    terms /= np.sqrt(float(n)) ** np.arange(4)
    return float(terms.sum())
