"""Drift statistics: captured traffic against the reference profile the trainer wrote (headrace.profile).

Per feature: PSI on the profile's decile bins (or categories), the two-sample KS statistic and p-value
against the profile's sorted sample, Jensen-Shannon distance and a chi-square test for categorical
features, and the change in missing rate; verdicts from the model's `MonitoringConfig`.

The work splits in two, so a window too large for one Lambda fans out over its S3 objects (a Step
Functions Distributed Map) and merges:

    partial = partial_from_frame(profile, frame)      # counts per chunk: bounded memory, threads per feature
    total = merge(partials)                           # exact: counts add
    result = finish(profile, total, monitoring)       # statistics and verdicts

`compute_drift(profile, frames, monitoring)` does all three for frames in one process. Modules:
`statistics` (the kernels), `kolmogorov` (KS p-values without scipy), `reference` (a profile compiled for
checks, cached), `partial`, `result` (the pydantic report), `check`.
"""

from typing import TYPE_CHECKING

from headrace.drift.result import DriftReason, DriftResult, DriftStatus, FeatureDrift
from headrace.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from headrace.drift.check import compute_drift, finish
    from headrace.drift.kolmogorov import KsMethod, ks_2samp_pvalue
    from headrace.drift.partial import DEFAULT_CHUNK_ROWS, DriftPartial, merge, partial_from_frame
    from headrace.drift.reference import DriftReference, compile_reference

# The numpy half, imported on first use: a step that only reads results (a check's Window, its payloads)
# does not pay for numpy at cold start.
_LAZY = {
    "compute_drift": "check",
    "finish": "check",
    "KsMethod": "kolmogorov",
    "ks_2samp_pvalue": "kolmogorov",
    "DEFAULT_CHUNK_ROWS": "partial",
    "DriftPartial": "partial",
    "merge": "partial",
    "partial_from_frame": "partial",
    "DriftReference": "reference",
    "compile_reference": "reference",
}


__getattr__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "DEFAULT_CHUNK_ROWS",
    "DriftPartial",
    "DriftReason",
    "DriftReference",
    "DriftResult",
    "DriftStatus",
    "FeatureDrift",
    "KsMethod",
    "compile_reference",
    "compute_drift",
    "finish",
    "ks_2samp_pvalue",
    "merge",
    "partial_from_frame",
]
