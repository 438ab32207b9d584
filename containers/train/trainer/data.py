"""Channel CSVs in, XGBoost-ready frames out.

Features are every column but the target, in file order. A column named in the `categorical`
hyperparameter becomes a pandas categorical with exactly those categories in that order (values outside
them are missing), which XGBoost splits on natively (`enable_categorical`); every other column is numeric,
booleans as 1/0 (`headrace.profile.numeric_values`, the rule the profile and serving share). A column that
is neither declared categorical nor numeric (free text, ids) is left out of the features, and said so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from headrace.encoding import model_input
from headrace.profile import category_values, numeric_values
from headrace.training_job import PipelineHyperparameters
from trainer.contract import Paths
from trainer.failure import TrainingFailure

_CSV_SUFFIXES = (".csv", ".csv.gz")
_EXAMPLES = 3


def _csv_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in directory.rglob("*")
        if p.is_file() and p.name.lower().endswith(_CSV_SUFFIXES) and not p.name.startswith(".")
    )


def _read_csv(path: Path, channel: str, categorical: Sequence[str]) -> pd.DataFrame:
    try:
        # Categories are labels, never numbers: "1" stays "1".
        return pd.read_csv(path, dtype=dict.fromkeys(categorical, "string"), low_memory=False)
    except pd.errors.EmptyDataError:
        raise TrainingFailure(
            f"Channel '{channel}' is empty: {path.name} has no header line and no rows."
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise TrainingFailure(
            f"Channel '{channel}': {path.name} is not a readable CSV file: {exc}."
        ) from None


def read_channel(paths: Paths, channel: str, categorical: Sequence[str]) -> pd.DataFrame:
    """Every CSV file of a channel, concatenated; the files must share one header."""
    directory = paths.channel(channel)
    if not directory.is_dir():
        raise TrainingFailure(
            f"Channel '{channel}' is missing: there is no {directory}. The training job needs the channels "
            "train, validation and test (InputDataConfig)."
        )
    files = _csv_files(directory)
    if not files:
        raise TrainingFailure(f"Channel '{channel}' is empty: {directory} holds no .csv files.")
    frames = [_read_csv(f, channel, categorical) for f in files]
    header = list(frames[0].columns)
    for path, frame in zip(files[1:], frames[1:], strict=True):
        if list(frame.columns) != header:
            raise TrainingFailure(
                f"Channel '{channel}': {path.name} has the columns {', '.join(map(str, frame.columns))}, "
                f"but {files[0].name} has {', '.join(header)}; every file of a channel needs the same header."
            )
    data = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if data.empty:
        raise TrainingFailure(
            f"Channel '{channel}' is empty: its {len(files)} CSV file(s) have a header line but no rows."
        )
    return data


@dataclass(frozen=True)
class Encoding:
    """How a frame becomes XGBoost's input: what `model/features.json` records for serving."""

    features: list[str]
    categorical: dict[str, list[str]]
    target: str
    # The target's classes when it is categorical (its label is the class's position).
    classes: list[str] | None = None
    ignored: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {"features": self.features, "categorical": self.categorical, "target": self.target}


def _unparsed(values: pd.Series[Any]) -> pd.Series[Any]:
    """The values of a column that are present but are not numbers (or true/false)."""
    return values[values.notna() & np.isnan(numeric_values(values))]


def _names(columns: Sequence[str]) -> str:
    return ", ".join(columns)


def plan_encoding(train: pd.DataFrame, hp: PipelineHyperparameters) -> Encoding:
    columns = [str(c) for c in train.columns]
    if hp.target not in columns:
        raise TrainingFailure(
            f"Target column '{hp.target}' (hyperparameter 'target') is missing from channel 'train', "
            f"whose columns are {_names(columns)}."
        )
    unknown = [c for c in hp.categorical if c not in columns]
    if unknown:
        raise TrainingFailure(
            f"Bad hyperparameter 'categorical': it names {_names(unknown)}, which channel 'train' does not "
            f"have (its columns are {_names(columns)})."
        )
    unknown = [c for c in hp.slice_by if c not in columns]
    if unknown:
        raise TrainingFailure(
            f"Bad hyperparameter 'slice_by': it names {_names(unknown)}, which channel 'train' does not have "
            f"(its columns are {_names(columns)})."
        )
    features: list[str] = []
    ignored: list[str] = []
    for name in columns:
        if name == hp.target:
            continue
        if name not in hp.categorical and len(_unparsed(train[name])):
            ignored.append(name)
        else:
            features.append(name)
    if not features:
        raise TrainingFailure(
            f"Channel 'train' has no usable feature column besides the target '{hp.target}'."
        )
    return Encoding(
        features=features,
        categorical={c: list(hp.categorical[c]) for c in features if c in hp.categorical},
        target=hp.target,
        classes=list(hp.categorical[hp.target]) if hp.target in hp.categorical else None,
        ignored=ignored,
    )


def check_columns(frame: pd.DataFrame, channel: str, encoding: Encoding) -> None:
    absent = [c for c in [*encoding.features, encoding.target] if c not in frame.columns]
    if not absent:
        return
    if absent == [encoding.target]:
        what = f"Target column '{encoding.target}' is"
    else:
        what = f"Column(s) {_names(absent)} (features or the target) are"
    raise TrainingFailure(
        f"{what} missing from channel '{channel}', though channel 'train' has them; "
        f"the columns of '{channel}' are {_names([str(c) for c in frame.columns])}."
    )


def features(frame: pd.DataFrame, encoding: Encoding) -> pd.DataFrame:
    """The model's input: categoricals with the declared categories, every other feature as float
    (`headrace.encoding`, the definition serving shares)."""
    return model_input(frame, encoding.features, encoding.categorical)


def unknown_categories(frame: pd.DataFrame, encoding: Encoding) -> dict[str, int]:
    """Per categorical feature, how many present values are outside its categories (they become missing)."""
    counts: dict[str, int] = {}
    for name, categories in encoding.categorical.items():
        labels = category_values(frame[name]).dropna()
        outside = int((~labels.isin(categories)).sum())
        if outside:
            counts[name] = outside
    return counts


def labels(
    frame: pd.DataFrame, channel: str, encoding: Encoding, hp: PipelineHyperparameters
) -> npt.NDArray[Any]:
    raw = frame[encoding.target]
    missing = int(raw.isna().sum())
    if missing:
        raise TrainingFailure(
            f"Target column '{encoding.target}' has {missing} missing value(s) in channel '{channel}'; "
            "every row needs a label."
        )
    if encoding.classes is not None:
        codes = pd.Categorical(category_values(raw), categories=encoding.classes).codes
        outside = sorted(set(raw[codes < 0].astype(str)))[:_EXAMPLES]
        if outside:
            raise TrainingFailure(
                f"Target column '{encoding.target}' in channel '{channel}' has values outside its categories "
                f"({_names(encoding.classes)}): {_names(outside)}."
            )
        values = np.asarray(codes, dtype=np.float64)
    else:
        bad = _unparsed(raw)
        if len(bad):
            raise TrainingFailure(
                f"Target column '{encoding.target}' in channel '{channel}' has values that are not numbers: "
                f"{_names(sorted(set(bad.astype(str)))[:_EXAMPLES])}."
            )
        values = numeric_values(raw)
    _check_labels(values, channel, encoding.target, hp)
    return values


def _check_labels(values: npt.NDArray[Any], channel: str, target: str, hp: PipelineHyperparameters) -> None:
    if hp.objective == "binary:logistic":
        outside = sorted(set(np.unique(values)) - {0.0, 1.0})[:_EXAMPLES]
        if outside:
            raise TrainingFailure(
                f"Target column '{target}' in channel '{channel}' must be 0 or 1 (or true/false) for "
                f"objective binary:logistic; it also holds {_names([f'{v:g}' for v in outside])}."
            )
    elif hp.objective == "multi:softprob":
        if np.any(values < 0) or np.any(values != np.floor(values)):
            raise TrainingFailure(
                f"Target column '{target}' in channel '{channel}' must hold class numbers 0, 1, 2, ... "
                "(or be declared in 'categorical') for objective multi:softprob."
            )
        if hp.num_class is not None and np.any(values >= hp.num_class):
            raise TrainingFailure(
                f"Target column '{target}' in channel '{channel}' holds class numbers >= num_class "
                f"({hp.num_class})."
            )
