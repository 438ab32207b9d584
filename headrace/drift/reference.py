"""A reference profile made ready for drift checks: built once per profile and kept (the "cached" profile).

Per numeric feature: the grid (the profile's sorted sample, distinct values, with the decile edges added),
its `GridIndex`, the reference sample's ECDF counts at the grid points, and which decile bin each grid
cell belongs to. Per categorical feature: the bucket of each known category. A drift Lambda keeps one
`DriftReference` per model version in memory between invocations; building one for 25 features with full
samples takes tens of milliseconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

import numpy as np

from headrace.drift.statistics import CountArray, GridIndex, IndexArray
from headrace.profile import CategoricalProfile, NumericProfile, ReferenceProfile

_CACHE_SIZE: Final = 8


@dataclass(frozen=True, eq=False)
class NumericReference:
    name: str
    profile: NumericProfile
    index: GridIndex
    # Reference sample values <= each grid point, and the sample's size (the KS reference).
    sample_at_or_below: CountArray
    sample_size: int
    # Decile bin of each grid cell (cells are ordered, so bins are runs): `bin_starts` are the first cells.
    bin_starts: IndexArray

    def decile_counts(self, cell_counts: CountArray) -> CountArray:
        """Counts per decile bin (the profile's `counts` order) from counts per grid cell."""
        sums = np.add.reduceat(cell_counts, self.bin_starts)
        return np.asarray(sums, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class CategoricalReference:
    name: str
    profile: CategoricalProfile
    reference_counts: CountArray

    @property
    def size(self) -> int:
        return len(self.profile.buckets)


@dataclass(frozen=True, eq=False)
class DriftReference:
    profile: ReferenceProfile
    numeric: tuple[NumericReference, ...]
    categorical: tuple[CategoricalReference, ...]
    # Partials carry it, so that counts made against one profile are never merged with another's.
    fingerprint: str

    @property
    def features(self) -> list[str]:
        return [f.name for f in self.numeric] + [f.name for f in self.categorical]

    @classmethod
    def of(cls, profile: ReferenceProfile | DriftReference) -> DriftReference:
        """The compiled form of `profile`, built on first use and kept for the last few profiles."""
        if isinstance(profile, DriftReference):
            return profile
        for i, (known, compiled) in enumerate(_COMPILED):
            if known is profile:
                _COMPILED.insert(0, _COMPILED.pop(i))
                return compiled
        compiled = compile_reference(profile)
        _COMPILED.insert(0, (profile, compiled))
        del _COMPILED[_CACHE_SIZE:]
        return compiled


_COMPILED: list[tuple[ReferenceProfile, DriftReference]] = []


def _numeric(name: str, profile: NumericProfile) -> NumericReference:
    sample = np.asarray(profile.sample, dtype=np.float64)
    edges = np.asarray(profile.edges, dtype=np.float64)
    grid = np.union1d(sample, edges)
    index = GridIndex(grid)
    at_or_below = np.searchsorted(sample, grid, side="right").astype(np.int64)
    # Grid cell c lies in decile bin searchsorted(edges, x, "left") for any x in it: for the point g_k that
    # is the bin of g_k; for the open interval below g_k, no edge lies strictly inside it, so also g_k's.
    point_bins = np.searchsorted(edges, grid, side="left")
    cell_bins = np.empty(index.size, dtype=np.intp)
    cell_bins[1::2] = point_bins
    cell_bins[0:-1:2] = point_bins
    cell_bins[-1] = edges.size
    bin_starts = np.searchsorted(cell_bins, np.arange(edges.size + 1), side="left")
    if np.any(np.diff(bin_starts) == 0) and grid.size:
        raise ValueError(f"profile of {name}: a decile bin has no grid cell (edges must be grid points)")
    return NumericReference(
        name=name,
        profile=profile,
        index=index,
        sample_at_or_below=at_or_below,
        sample_size=int(sample.size),
        bin_starts=bin_starts.astype(np.intp),
    )


def _fingerprint(profile: ReferenceProfile) -> str:
    digest = hashlib.sha256(f"n={profile.n}".encode())
    for name, feature in profile.features.items():
        digest.update(f"|{name}:{feature.kind}:{feature.count}:{feature.missing_rate!r}".encode())
        if isinstance(feature, NumericProfile):
            digest.update(np.asarray(feature.edges, dtype=np.float64).tobytes())
            digest.update(np.asarray(feature.counts, dtype=np.int64).tobytes())
            digest.update(np.asarray(feature.sample, dtype=np.float64).tobytes())
        else:
            digest.update("\x1f".join(feature.categories).encode())
            digest.update(np.asarray([feature.counts[b] for b in feature.buckets], dtype=np.int64).tobytes())
    return digest.hexdigest()


def compile_reference(profile: ReferenceProfile) -> DriftReference:
    numeric: list[NumericReference] = []
    categorical: list[CategoricalReference] = []
    for name, feature in profile.features.items():
        if isinstance(feature, NumericProfile):
            numeric.append(_numeric(name, feature))
        else:
            counts = np.array([feature.counts.get(b, 0) for b in feature.buckets], dtype=np.int64)
            categorical.append(CategoricalReference(name=name, profile=feature, reference_counts=counts))
    return DriftReference(
        profile=profile,
        numeric=tuple(numeric),
        categorical=tuple(categorical),
        fingerprint=_fingerprint(profile),
    )
