"""Mergeable partial results: what one chunk of a window contributes to its drift check.

A `DriftPartial` holds counts only: rows seen, missing values per feature, per numeric feature the counts
on its reference grid's cells (`GridIndex`), per categorical feature the counts per category bucket (the
profile's categories, then `__other__` for every value outside them). Counts merge by addition, so
`merge` is exact and order-free: a window split into any chunks (S3 objects fanned out by a Step Functions
Distributed Map, row groups, slices of one frame) gives the same partial, and therefore the same result,
as the window in one piece. What the counts determine exactly:

- PSI on the profile's decile bins (the bins are runs of grid cells);
- the KS statistic of the current window against the profile's stored sample (at most `SAMPLE_LIMIT`
  values of the training data, drawn without replacement): equal to
  `scipy.stats.ks_2samp(sample, current_values).statistic`, not an approximation of it;
- category frequencies, hence Jensen-Shannon distance and the chi-square test;
- missing rates.

Nothing is estimated or sketched, so no error bound applies. The approximation lies upstream, in the
profile: KS compares with the training sample, not with every training value (its p-value uses the
sample's size).

Memory: a frame is scanned `chunk_rows` rows at a time per column, so the working set is a few arrays of
`chunk_rows` values per worker thread plus the counts (2 x sample size + 1 per numeric feature), whatever
the frame's length. Float64 columns are read in place; other dtypes are converted a chunk at a time.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import numpy as np
import numpy.typing as npt

from headrace.drift.reference import CategoricalReference, DriftReference, NumericReference
from headrace.drift.statistics import CountArray, FloatArray, Workspace
from headrace.profile import ReferenceProfile, numeric_values

if TYPE_CHECKING:
    # Frames come from the caller: a Finish step merges partials without importing pandas (cold start).
    import pandas as pd

# A window's columns by name, as numpy arrays of one length (captured requests' cells: no pandas at all).
Columns = Mapping[str, npt.NDArray[Any]]

# 64k rows: a column chunk and its temporaries (about 3 MB) stay near the core's cache, and the per-call
# overhead of numpy is under 5% of the work.
DEFAULT_CHUNK_ROWS: Final = 65_536
_FORMAT: Final = 1


@dataclass(frozen=True, eq=False)
class DriftPartial:
    """Counts from some rows of a window, against one reference profile (`fingerprint`)."""

    fingerprint: str
    rows: int
    # Missing (or non-finite, or unparseable) values per feature: numeric features first, then categorical.
    missing: CountArray
    numeric: tuple[CountArray, ...]
    categorical: tuple[CountArray, ...]

    @classmethod
    def empty(cls, profile: ReferenceProfile | DriftReference) -> DriftPartial:
        reference = DriftReference.of(profile)
        return cls(
            fingerprint=reference.fingerprint,
            rows=0,
            missing=np.zeros(len(reference.features), dtype=np.int64),
            numeric=tuple(np.zeros(f.index.size, dtype=np.int64) for f in reference.numeric),
            categorical=tuple(np.zeros(f.size, dtype=np.int64) for f in reference.categorical),
        )

    def to_bytes(self) -> bytes:
        """A compressed .npz: what a Distributed Map iteration writes to S3 (its state output is the key;
        Step Functions payloads stop at 256 KiB, a numeric feature's counts alone can reach 320 KB)."""
        arrays: dict[str, Any] = {f"numeric_{i}": counts for i, counts in enumerate(self.numeric)}
        arrays.update({f"categorical_{i}": counts for i, counts in enumerate(self.categorical)})
        header = {
            "format": _FORMAT,
            "fingerprint": self.fingerprint,
            "rows": self.rows,
            "numeric": len(self.numeric),
            "categorical": len(self.categorical),
        }
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8),
            missing=self.missing,
            **arrays,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> DriftPartial:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            header = json.loads(archive["header"].tobytes().decode())
            if header.get("format") != _FORMAT:
                raise ValueError(f"not a drift partial of format {_FORMAT}: {header.get('format')!r}")
            return cls(
                fingerprint=str(header["fingerprint"]),
                rows=int(header["rows"]),
                missing=archive["missing"].astype(np.int64),
                numeric=tuple(archive[f"numeric_{i}"].astype(np.int64) for i in range(header["numeric"])),
                categorical=tuple(
                    archive[f"categorical_{i}"].astype(np.int64) for i in range(header["categorical"])
                ),
            )


def merge(partials: Iterable[DriftPartial]) -> DriftPartial:
    """The partial of all their rows together: counts added (exact, in any order or grouping)."""
    items = list(partials)
    if not items:
        raise ValueError("nothing to merge: pass at least one partial (DriftPartial.empty for none)")
    first = items[0]
    for other in items[1:]:
        if other.fingerprint != first.fingerprint:
            raise ValueError("cannot merge drift partials computed against different reference profiles")
    return DriftPartial(
        fingerprint=first.fingerprint,
        rows=sum(p.rows for p in items),
        missing=np.sum([p.missing for p in items], axis=0, dtype=np.int64),
        numeric=tuple(
            np.sum(group, axis=0, dtype=np.int64) for group in zip(*(p.numeric for p in items), strict=True)
        ),
        categorical=tuple(
            np.sum(group, axis=0, dtype=np.int64)
            for group in zip(*(p.categorical for p in items), strict=True)
        ),
    )


def default_workers() -> int:
    """One thread per CPU this process may use (a Lambda function gets vCPUs with its memory size)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def partial_from_frame(
    profile: ReferenceProfile | DriftReference,
    frame: pd.DataFrame | Columns,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    workers: int | None = None,
    executor: ThreadPoolExecutor | None = None,
) -> DriftPartial:
    """Counts of `frame`'s rows (a DataFrame, or `Columns`) against the profile; columns the profile does
    not know are ignored.

    Features are scanned in parallel threads (numpy releases the GIL in its loops): `workers` threads, by
    default one per CPU, or the given `executor`'s.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    reference = DriftReference.of(profile)
    absent = [name for name in reference.features if name not in frame]
    if absent:
        raise ValueError(f"cannot check drift: the data has no column {', '.join(absent)}")
    # Categorical columns of Python strings hold the GIL while they are hashed: one task scans them all, so
    # at most one thread does that while the others run numpy kernels. It goes first, being the longest.
    categorical = [(feature, frame[feature.name]) for feature in reference.categorical]
    tasks: list[Callable[[], list[tuple[CountArray, int]]]] = [_categorical_task(categorical, chunk_rows)]
    tasks += [_numeric_task(feature, frame[feature.name], chunk_rows) for feature in reference.numeric]
    results = _run(tasks, workers, executor)
    categorical_results, numeric_results = results[0], [r for group in results[1:] for r in group]
    return DriftPartial(
        fingerprint=reference.fingerprint,
        rows=_rows(frame, reference.features),
        missing=np.array([m for _, m in numeric_results + categorical_results], dtype=np.int64),
        numeric=tuple(c for c, _ in numeric_results),
        categorical=tuple(c for c, _ in categorical_results),
    )


Scan = Callable[[], list[tuple[CountArray, int]]]
Values: TypeAlias = "pd.Series[Any] | npt.NDArray[Any]"


def _rows(frame: pd.DataFrame | Columns, features: Iterable[str]) -> int:
    if not isinstance(frame, Mapping):
        return len(frame)
    lengths = {len(frame[name]) for name in features}
    if len(lengths) > 1:
        raise ValueError(f"the columns differ in length: {sorted(lengths)}")
    return lengths.pop() if lengths else 0


def _slice(values: Values, start: int, stop: int) -> Values:
    return values[start:stop] if isinstance(values, np.ndarray) else values.iloc[start:stop]


def _run(
    tasks: list[Scan], workers: int | None, executor: ThreadPoolExecutor | None
) -> list[list[tuple[CountArray, int]]]:
    if executor is not None:
        return list(executor.map(lambda task: task(), tasks))
    threads = min(workers or default_workers(), len(tasks))
    if threads <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(threads, thread_name_prefix="drift") as pool:
        return list(pool.map(lambda task: task(), tasks))


def _float_chunks(values: Values, chunk_rows: int) -> Iterable[FloatArray]:
    if isinstance(values, np.ndarray):
        array: npt.NDArray[Any] | None = values
    else:
        array = values.to_numpy(copy=False) if isinstance(values.dtype, np.dtype) else None
    for start in range(0, len(values), chunk_rows):
        if array is not None and array.dtype == np.float64:
            yield array[start : start + chunk_rows]
        elif array is not None and (array.dtype.kind in "iuf" or array.dtype == np.bool_):
            yield array[start : start + chunk_rows].astype(np.float64)
        else:
            yield numeric_values(_slice(values, start, start + chunk_rows))


def _numeric_task(feature: NumericReference, values: Values, chunk_rows: int) -> Scan:
    def scan() -> list[tuple[CountArray, int]]:
        total = np.zeros(feature.index.size, dtype=np.int64)
        missing = 0
        workspace = Workspace(min(chunk_rows, len(values)))
        for chunk in _float_chunks(values, chunk_rows):
            counts, absent = feature.index.count(chunk, workspace)
            total += counts
            missing += absent
        return [(total, missing)]

    return scan


def _categorical_task(columns: list[tuple[CategoricalReference, Values]], chunk_rows: int) -> Scan:
    def scan() -> list[tuple[CountArray, int]]:
        results: list[tuple[CountArray, int]] = []
        for feature, values in columns:
            total = np.zeros(feature.size, dtype=np.int64)
            for start in range(0, len(values), chunk_rows):
                total += feature.profile.bin_counts(_slice(values, start, start + chunk_rows))
            results.append((total, len(values) - int(total.sum())))
        return results

    return scan
