"""A drift check: a window's partials merged and turned into statistics and verdicts."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from headrace.config import MonitoringConfig
from headrace.drift.kolmogorov import KsMethod, ks_2samp_pvalue
from headrace.drift.partial import (
    DEFAULT_CHUNK_ROWS,
    DriftPartial,
    default_workers,
    merge,
    partial_from_frame,
)
from headrace.drift.reference import CategoricalReference, DriftReference, NumericReference
from headrace.drift.result import DriftReason, DriftResult, FeatureDrift
from headrace.drift.statistics import CountArray, chi2_homogeneity, js_distance, ks_statistic, psi
from headrace.profile import ReferenceProfile

if TYPE_CHECKING:
    # Imported where frames are: `finish` (a drift check's Finish step) needs only numpy (cold start).
    import pandas as pd


def compute_drift(
    profile: ReferenceProfile | DriftReference,
    frames: pd.DataFrame | Iterable[pd.DataFrame],
    monitoring: MonitoringConfig,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    workers: int | None = None,
    ks_method: KsMethod = "auto",
) -> DriftResult:
    """Drift of a window (one frame, or its chunks one after another) against the reference profile.

    Frames are consumed one at a time, so a window read chunk by chunk never needs to fit in memory.
    """
    import pandas as pd

    reference = DriftReference.of(profile)
    chunks = [frames] if isinstance(frames, pd.DataFrame) else frames
    total = DriftPartial.empty(reference)
    threads = min(workers or default_workers(), max(1, len(reference.features)))
    with ThreadPoolExecutor(threads, thread_name_prefix="drift") as pool:
        for frame in chunks:
            part = partial_from_frame(reference, frame, chunk_rows=chunk_rows, executor=pool)
            total = merge([total, part])
    return finish(reference, total, monitoring, ks_method=ks_method)


def finish(
    profile: ReferenceProfile | DriftReference,
    partial: DriftPartial,
    monitoring: MonitoringConfig,
    *,
    ks_method: KsMethod = "auto",
) -> DriftResult:
    """Statistics and verdicts from a (merged) partial.

    A feature drifts when its PSI is at or above `monitoring.psi_threshold`, or its test's p-value (KS for
    a numeric feature, chi-square for a categorical one) is below `monitoring.ks_pvalue` (divided by the
    number of features under `monitoring.bonferroni`, the default). With fewer rows
    than `monitoring.min_rows` the window is `too_little_traffic`: statistics reported, nothing drifted.
    `ks_method` picks the KS p-value's distribution as `scipy.stats.ks_2samp`'s `method` does.
    """
    reference = DriftReference.of(profile)
    if partial.fingerprint != reference.fingerprint:
        raise ValueError("this drift partial was computed against a different reference profile")
    enough = partial.rows >= monitoring.min_rows
    features: list[FeatureDrift] = []
    for i, numeric in enumerate(reference.numeric):
        features.append(
            _numeric(numeric, partial.numeric[i], int(partial.missing[i]), partial.rows, ks_method)
        )
    offset = len(reference.numeric)
    for i, categorical in enumerate(reference.categorical):
        features.append(
            _categorical(categorical, partial.categorical[i], int(partial.missing[offset + i]), partial.rows)
        )
    order = {name: i for i, name in enumerate(reference.profile.features)}
    alpha = monitoring.ks_pvalue / max(1, len(features)) if monitoring.bonferroni else monitoring.ks_pvalue
    features = sorted((_verdict(f, monitoring, alpha, enough) for f in features), key=lambda f: order[f.name])
    drifted = [f.name for f in features if f.drifted]
    return DriftResult(
        status="too_little_traffic" if not enough else ("drifted" if drifted else "stable"),
        drifted=bool(drifted),
        rows_reference=reference.profile.n,
        rows_current=partial.rows,
        min_rows=monitoring.min_rows,
        psi_threshold=monitoring.psi_threshold,
        pvalue_threshold=alpha,
        features=features,
        drifted_features=drifted,
        profile_fingerprint=reference.fingerprint,
    )


def _missing(reference_rate: float, missing: int, rows: int) -> dict[str, float]:
    current = missing / rows if rows else 0.0
    return {
        "missing_rate_reference": reference_rate,
        "missing_rate_current": current,
        "missing_rate_change": current - reference_rate,
    }


def _numeric(
    feature: NumericReference, cells: CountArray, missing: int, rows: int, ks_method: KsMethod
) -> FeatureDrift:
    values = int(cells.sum())
    common = {
        "name": feature.name,
        "kind": "numeric",
        "values_reference": feature.profile.count,
        "values_current": values,
        **_missing(feature.profile.missing_rate, missing, rows),
    }
    if values == 0 or feature.sample_size == 0:
        side = "current window" if values == 0 else "reference profile"
        return FeatureDrift.model_validate({**common, "note": f"no values in the {side}"})
    statistic = ks_statistic(feature.sample_at_or_below, feature.sample_size, cells)
    pvalue, method = ks_2samp_pvalue(statistic, feature.sample_size, values, ks_method)
    return FeatureDrift.model_validate(
        {
            **common,
            "psi": psi(feature.profile.counts, feature.decile_counts(cells)),
            "ks_statistic": statistic,
            "ks_pvalue": pvalue,
            "ks_method": method,
            "ks_reference_size": feature.sample_size,
        }
    )


def _categorical(feature: CategoricalReference, counts: CountArray, missing: int, rows: int) -> FeatureDrift:
    values = int(counts.sum())
    common = {
        "name": feature.name,
        "kind": "categorical",
        "values_reference": feature.profile.count,
        "values_current": values,
        **_missing(feature.profile.missing_rate, missing, rows),
    }
    if values == 0 or feature.reference_counts.sum() == 0:
        side = "current window" if values == 0 else "reference profile"
        return FeatureDrift.model_validate({**common, "note": f"no values in the {side}"})
    statistic, pvalue, dof = chi2_homogeneity(feature.reference_counts, counts)
    return FeatureDrift.model_validate(
        {
            **common,
            "psi": psi(feature.reference_counts, counts),
            "js_distance": js_distance(feature.reference_counts, counts),
            "chi2_statistic": statistic,
            "chi2_pvalue": pvalue,
            "chi2_dof": dof,
        }
    )


def _verdict(
    feature: FeatureDrift, monitoring: MonitoringConfig, alpha: float, enough_traffic: bool
) -> FeatureDrift:
    reasons: list[DriftReason] = []
    if feature.psi is not None and feature.psi >= monitoring.psi_threshold:
        reasons.append("psi")
    if feature.ks_pvalue is not None and feature.ks_pvalue < alpha:
        reasons.append("ks")
    if feature.chi2_pvalue is not None and feature.chi2_pvalue < alpha:
        reasons.append("chi2")
    if not enough_traffic:
        # The numbers stay, for reading; with too little traffic nothing counts as drift.
        reasons = []
    return feature.model_copy(update={"reasons": reasons, "drifted": bool(reasons)})
