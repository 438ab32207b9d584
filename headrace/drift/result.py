"""What a drift check reports: per feature statistics and verdicts, and the window's verdict."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

# stable: enough traffic, no feature drifted; drifted: enough traffic, at least one feature drifted;
# too_little_traffic: fewer current rows than monitoring.min_rows, so nothing is called drift (the
# statistics are still reported, for a person to read, not for an alarm).
DriftStatus = Literal["stable", "drifted", "too_little_traffic"]
# Which threshold a feature crossed: PSI at or above psi_threshold, or a test's p-value below ks_pvalue
# (KS for numeric features, chi-square for categorical ones).
DriftReason = Literal["psi", "ks", "chi2"]


class FeatureDrift(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    kind: Literal["numeric", "categorical"]
    # Non-missing values: in the training data (the profile) and in the current window.
    values_reference: int
    values_current: int
    missing_rate_reference: float
    missing_rate_current: float
    # current - reference.
    missing_rate_change: float
    # None where a side has no values.
    psi: float | None = None
    # Numeric features: KS against the profile's sample of `ks_reference_size` training values.
    ks_statistic: float | None = None
    ks_pvalue: float | None = None
    ks_method: Literal["exact", "asymp"] | None = None
    ks_reference_size: int | None = None
    # Categorical features: on the profile's categories plus __other__.
    js_distance: float | None = None
    chi2_statistic: float | None = None
    chi2_pvalue: float | None = None
    chi2_dof: int | None = None
    drifted: bool = False
    reasons: list[DriftReason] = []
    # Why statistics are missing, when they are.
    note: str | None = None


class DriftResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: DriftStatus
    drifted: bool
    rows_reference: int
    rows_current: int
    # The thresholds applied (monitoring config).
    min_rows: int
    psi_threshold: float
    pvalue_threshold: float
    features: list[FeatureDrift]
    drifted_features: list[str]
    profile_fingerprint: str

    def feature(self, name: str) -> FeatureDrift:
        for feature in self.features:
            if feature.name == name:
                return feature
        raise KeyError(name)
