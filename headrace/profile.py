"""The reference profile of a model's training data: what drift checks compare captured traffic with.

The trainer writes it to `model/profile.json` (containers/train/CONTRACT.md). Per numeric feature: decile
bins with their counts (for PSI), mean and spread, missing rate, and a sorted sample (for KS); per
categorical feature: category counts and frequencies, values outside the known categories pooled as
`__other__`. The binning rules live here too (`bin_counts`), so a drift check bins new data exactly as the
reference was binned. Pure numpy/pandas: Lambda (the AWS SDK for pandas layer) and the container share it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from headrace.config import ColumnType, DataSchema
from headrace.text_numbers import to_floats

if TYPE_CHECKING:
    # Imported where used: a drift check's Finish and Window steps read profiles without pandas (cold start).
    import pandas as pd

FloatArray = npt.NDArray[np.float64]
CountArray = npt.NDArray[np.int64]

PROFILE_VERSION: Final = 1
BINS: Final = 10
SAMPLE_LIMIT: Final = 20_000
OTHER: Final = "__other__"
# A free-text column of the schema (type string) is profiled by its most frequent values.
TOP_VALUES: Final = 50
TRUE_FALSE: Final = {"true": 1.0, "false": 0.0}


class FeatureInfo(BaseModel):
    """The features a model uses: `model/features.json` reads as one (its other keys are ignored).

    A feature named in `categorical` is categorical with those categories; every other one is numeric.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    features: list[str]
    categorical: dict[str, list[str]] = Field(default_factory=dict)


def numeric_values(values: pd.Series[Any] | npt.NDArray[Any]) -> FloatArray:
    """A column as floats: booleans and "true"/"false" text as 1/0; missing, unparseable, infinite: NaN.

    A numpy array (captured requests' cells: text, or JSON's numbers, booleans and nulls) is read without
    pandas, as pandas would read it (headrace.text_numbers)."""
    if isinstance(values, np.ndarray):
        result = _array_numbers(values)
    else:
        import pandas as pd

        if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
            result = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            parsed = pd.to_numeric(values, errors="coerce")
            words = values.astype("string").str.strip().str.lower().map(TRUE_FALSE)
            result = parsed.where(parsed.notna(), words).to_numpy(dtype=np.float64, na_value=np.nan)
    result[~np.isfinite(result)] = np.nan
    return result


def _array_numbers(values: npt.NDArray[Any]) -> FloatArray:
    if values.dtype.kind in "biuf":
        return values.astype(np.float64)
    result = to_floats(values)
    for i in np.flatnonzero(np.isnan(result)):
        value = values[i]
        if isinstance(value, str):
            result[i] = TRUE_FALSE.get(value.strip().lower(), np.nan)
    return result


def _distinct_labels(values: pd.Series[Any] | npt.NDArray[Any]) -> tuple[CountArray, list[str]]:
    """Per value, the index of its label (-1: missing), and the labels: text work on the distinct values
    only, a column has far fewer of them than rows."""
    if isinstance(values, np.ndarray):
        return _array_labels(values)
    import pandas as pd

    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    labels = pd.Series(np.asarray(uniques, dtype=object)).astype("string").str.strip()
    return np.asarray(codes, dtype=np.int64), list(labels)


def _array_labels(values: npt.NDArray[Any]) -> tuple[CountArray, list[str]]:
    # As pandas' factorize then astype("string"): None and NaN are missing; everything else is its text.
    index: dict[Any, int] = {}
    codes = np.fromiter(
        (-1 if _missing(value) else index.setdefault(value, len(index)) for value in values.flat),
        dtype=np.int64,
        count=values.size,
    )
    return codes, [str(value).strip() for value in index]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def category_values(values: pd.Series[Any]) -> pd.Series[Any]:
    """A column as category labels: its values as text, surrounding spaces dropped; missing stays missing."""
    import pandas as pd

    codes, labels = _distinct_labels(values)
    text = pd.array(labels, dtype="string")
    return pd.Series(text.take(codes, allow_fill=True), index=values.index, name=values.name)


class NumericProfile(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["numeric"] = "numeric"
    # Non-missing values; `missing_rate` is the share of rows without one.
    count: int
    missing_rate: float
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    # Ascending, distinct interior cut points (the deciles, each a value of the data): bin i holds
    # edges[i-1] < x <= edges[i]; the end bins are open, so values outside the training range land there.
    edges: list[float]
    counts: list[int]
    # Sorted, at most SAMPLE_LIMIT values drawn without replacement (every value when there are fewer).
    sample: list[float]

    def bin_counts(self, values: pd.Series[Any] | npt.NDArray[Any]) -> CountArray:
        """How many of `values` fall in each of this profile's bins; missing values are not counted."""
        array = (
            values
            if isinstance(values, np.ndarray) and values.dtype == np.float64
            else numeric_values(values)
        )
        present = array[~np.isnan(array)]
        index = np.searchsorted(np.asarray(self.edges, dtype=np.float64), present, side="left")
        return np.bincount(index, minlength=len(self.edges) + 1).astype(np.int64)


class CategoricalProfile(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["categorical"] = "categorical"
    count: int
    missing_rate: float
    categories: list[str]
    # Per category, in `categories` order, then OTHER for every value outside them.
    counts: dict[str, int]
    frequencies: dict[str, float]

    @property
    def buckets(self) -> list[str]:
        return [*self.categories, OTHER]

    def bin_counts(self, values: pd.Series[Any] | npt.NDArray[Any]) -> CountArray:
        """Counts per bucket (`buckets` order) of `values`; missing values are not counted."""
        codes, labels = _distinct_labels(values)
        per_label = np.bincount(codes[codes >= 0], minlength=len(labels))
        position = {category: i for i, category in enumerate(self.categories)}
        bucket = np.array([position.get(label, len(self.categories)) for label in labels], dtype=np.int64)
        counts = np.bincount(bucket, weights=per_label, minlength=len(self.categories) + 1)
        return counts.astype(np.int64)


FeatureProfile = Annotated[NumericProfile | CategoricalProfile, Field(discriminator="kind")]


class ReferenceProfile(BaseModel):
    model_config = ConfigDict(frozen=True)

    version: Literal[1] = PROFILE_VERSION
    # Rows profiled.
    n: int
    features: dict[str, FeatureProfile]


def _missing_rate(missing: int, rows: int) -> float:
    return missing / rows if rows else 0.0


def profile_numeric(values: pd.Series[Any], seed: int = 0) -> NumericProfile:
    array = numeric_values(values)
    present = np.sort(array[~np.isnan(array)])
    rows, count = len(array), len(present)
    if count == 0:
        return NumericProfile(
            count=0,
            missing_rate=_missing_rate(rows, rows),
            mean=None,
            std=None,
            min=None,
            max=None,
            edges=[],
            counts=[0],
            sample=[],
        )
    # Edges are data values (inverted CDF), so discrete columns get edges on their own values.
    edges = np.unique(np.quantile(present, np.arange(1, BINS) / BINS, method="inverted_cdf"))
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    if count > SAMPLE_LIMIT:
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(present, size=SAMPLE_LIMIT, replace=False))
    else:
        sample = present
    return NumericProfile(
        count=count,
        missing_rate=_missing_rate(rows - count, rows),
        mean=float(present.mean()),
        std=float(present.std()),
        min=float(present[0]),
        max=float(present[-1]),
        edges=edges.tolist(),
        counts=counts.tolist(),
        sample=sample.tolist(),
    )


def profile_categorical(values: pd.Series[Any], categories: list[str] | None = None) -> CategoricalProfile:
    """`categories` None: the column's most frequent values (ties by name), for free-text columns."""
    labels = category_values(values)
    present = labels.dropna()
    if categories is None:
        tally = present.value_counts()
        ranked = sorted(tally.items(), key=lambda item: (-int(item[1]), str(item[0])))
        categories = [str(value) for value, _ in ranked[:TOP_VALUES]]
    profile = CategoricalProfile(
        count=len(present),
        missing_rate=_missing_rate(len(labels) - len(present), len(labels)),
        categories=list(categories),
        counts={},
        frequencies={},
    )
    counts = dict(zip(profile.buckets, (int(c) for c in profile.bin_counts(present)), strict=True))
    total = sum(counts.values())
    frequencies = {bucket: (count / total if total else 0.0) for bucket, count in counts.items()}
    return profile.model_copy(update={"counts": counts, "frequencies": frequencies})


def _feature_kinds(features: DataSchema | FeatureInfo) -> dict[str, list[str] | Literal["numeric"] | None]:
    """Feature -> "numeric", its categories, or None (categorical by observed values)."""
    if isinstance(features, FeatureInfo):
        return {name: features.categorical.get(name, "numeric") for name in features.features}
    kinds: dict[str, list[str] | Literal["numeric"] | None] = {}
    for column in features.features:
        if column.type is ColumnType.CATEGORY:
            kinds[column.name] = list(column.categories or [])
        elif column.type is ColumnType.STRING:
            kinds[column.name] = None
        else:
            kinds[column.name] = "numeric"
    return kinds


def build_profile(frame: pd.DataFrame, features: DataSchema | FeatureInfo, seed: int = 0) -> ReferenceProfile:
    """The reference profile of `frame` for the model's features (the target is not profiled)."""
    kinds = _feature_kinds(features)
    absent = [name for name in kinds if name not in frame.columns]
    if absent:
        raise ValueError(f"cannot profile: the data has no column {', '.join(absent)}")
    profiles: dict[str, NumericProfile | CategoricalProfile] = {}
    for name, kind in kinds.items():
        if kind == "numeric":
            profiles[name] = profile_numeric(frame[name], seed=seed)
        else:
            profiles[name] = profile_categorical(frame[name], None if kind is None else list(kind))
    return ReferenceProfile(n=len(frame), features=profiles)
