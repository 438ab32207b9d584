"""A model's own training code: the module a model folder brings (containers/train/CONTRACT.md).

Both images carry the user's files under `usercode/` beside the program, with the manifest `usercode.json`
(stacks/assets.py stages it). The trainer and the inference container load the module the same way through
`load_usercode`, call its functions through `UserCode.call`, and check what `predict` returns with
`check_scores`; anything wrong becomes a `UserCodeError` whose reason names the model, the function (or the
file, or the requirement) and the problem, so a training job's FailureReason and a refused deploy say what
to fix. Pure (numpy, pandas, packaging, importlib): both containers import it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import inspect
import json
import math
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from packaging.requirements import InvalidRequirement, Requirement

from headrace.early_stopping import EarlyStopping
from headrace.training_job import RESERVED, metric_line

USERCODE_DIR: Final = "usercode"
MANIFEST: Final = "usercode.json"
REQUIREMENTS: Final = "requirements.txt"
REQUIRED: Final = ("fit", "predict", "save", "load")
# The parameters each function is called with, positionally: the contract's signatures.
SIGNATURES: Final[dict[str, tuple[str, ...]]] = {
    "fit": ("train", "validation", "hyperparameters", "context"),
    "predict": ("model", "features"),
    "save": ("model", "directory"),
    "load": ("directory",),
}
# SageMaker adds keys with these prefixes to a job's hyperparameters (headrace.training_job ignores them too).
_SAGEMAKER_PREFIXES: Final = ("sagemaker_", "_")
_SHOWN_VALUES: Final = 3

FloatArray = npt.NDArray[np.float64]


class UserCodeError(Exception):
    """The user's code cannot be used; `reason` is one paragraph naming the model, what and the problem."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Manifest:
    model: str
    entry_point: str
    sha256: str


@dataclass(frozen=True)
class Dataset:
    """One split as the user's `fit` sees it: `features` exactly as `headrace.encoding.model_input` gives
    them (declared categoricals as pandas Categorical with their categories, every other feature float64,
    columns in feature order) and `labels` as float64 (0/1 for binary, class numbers for multi-class)."""

    features: pd.DataFrame
    labels: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Context:
    """What the run tells the user's `fit`, and the hooks it offers back (metric lines, early stopping)."""

    model: str
    objective: str
    metric: str
    classes: list[str] | None
    num_class: int | None
    device: Literal["cuda", "cpu"]
    seed: int
    checkpoints: Path
    # The `early_stopping_rounds` hyperparameter: epochs without a better validation score before
    # `report` says stop (0: never).
    patience: int = 0
    # The trainer's own implementation of the gate's metric (labels, scores) -> value, for `score`.
    scorer: Callable[[npt.NDArray[Any], npt.NDArray[Any]], float | None] | None = field(
        default=None, repr=False
    )
    _stopping: EarlyStopping = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._stopping = EarlyStopping(self.metric, self.patience)

    @property
    def best_epoch(self) -> int | None:
        """The reported epoch with the best validation score so far (None before any report)."""
        return self._stopping.best_epoch

    @property
    def best_score(self) -> float | None:
        return self._stopping.best_score

    def score(self, labels: npt.NDArray[Any], scores: Any) -> float:
        """The gate's metric of `scores` (what `predict` returns) against `labels`, computed as the
        evaluation computes it; NaN when it cannot be computed (e.g. a single class)."""
        if self.scorer is None:
            raise RuntimeError("this Context has no scorer")
        checked = check_scores(self.model, scores, len(labels), self.objective, self.num_class)
        value = self.scorer(np.asarray(labels, dtype=np.float64), checked)
        return math.nan if value is None else float(value)

    def report(self, epoch: int, *, train: float | None = None, validation: float) -> bool:
        """Print the epoch's metric line (SageMaker's metric definitions scrape it) and say whether early
        stopping ends training now: True once `patience` epochs pass without a better validation score."""
        print(metric_line(epoch, self.metric, train, validation), flush=True)
        self._stopping.record(epoch, float(validation))
        return self._stopping.should_stop(epoch)

    def log(self, message: str) -> None:
        """A line in the training job's log (CloudWatch)."""
        print(f"[{self.model}] {message}", flush=True)


def user_hyperparameters(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The `hyperparameters` the user's `fit` gets: the job's, less the keys the pipeline sets (RESERVED)
    and SageMaker's own, each value JSON-decoded where it parses ("0.1" -> 0.1, "true" -> True)."""
    decoded: dict[str, Any] = {}
    for key, value in raw.items():
        if key in RESERVED or key.startswith(_SAGEMAKER_PREFIXES):
            continue
        try:
            decoded[key] = json.loads(value) if isinstance(value, str) else value
        except json.JSONDecodeError:
            decoded[key] = value
    return decoded


def find_usercode(program_dir: Path) -> Path | None:
    """`program_dir/usercode` when it holds a manifest (a custom model's image), else None (built-in)."""
    directory = program_dir / USERCODE_DIR
    return directory if (directory / MANIFEST).is_file() else None


def _read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return Manifest(str(document["model"]), str(document["entry_point"]), str(document["sha256"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserCodeError(
            f"The user-code manifest {path} is unreadable ({type(exc).__name__}: {exc}); it must be a JSON "
            'object {"model", "entry_point", "sha256"} (stacks/assets.py writes it when staging the image).'
        ) from None


def _requirement_lines(path: Path, model: str) -> list[tuple[int, Requirement]]:
    found: list[tuple[int, Requirement]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        text = line.split(" #", 1)[0].strip()
        # Options (--extra-index-url, -r, ...) steer pip at image build; nothing to check once installed.
        if not text or text.startswith(("#", "-")):
            continue
        try:
            found.append((number, Requirement(text)))
        except InvalidRequirement as exc:
            raise UserCodeError(
                f"model '{model}': {REQUIREMENTS}, line {number}: '{text}' is not a requirement ({exc})."
            ) from None
    return found


def check_requirements(directory: Path, model: str) -> None:
    """Every requirement of the model's requirements.txt is installed at a version it allows."""
    path = directory / REQUIREMENTS
    if not path.is_file():
        return
    for number, requirement in _requirement_lines(path, model):
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            raise UserCodeError(
                f"model '{model}': requirement '{requirement}' ({REQUIREMENTS}, line {number}) is not met: "
                f"{requirement.name} is not installed."
            ) from None
        if not requirement.specifier.contains(installed, prereleases=True):
            raise UserCodeError(
                f"model '{model}': requirement '{requirement}' ({REQUIREMENTS}, line {number}) is not met: "
                f"{requirement.name} {installed} is installed."
            )


def _where(tb: TracebackType | None, directory: Path) -> str:
    """` (model.py, line 12)`: the innermost frame inside the user's files, or nothing when none is."""
    inside = [
        frame
        for frame in traceback.extract_tb(tb)
        if frame.filename and Path(frame.filename).resolve().is_relative_to(directory)
    ]
    if not inside:
        return ""
    frame = inside[-1]
    return f" ({Path(frame.filename).resolve().relative_to(directory)}, line {frame.lineno})"


def _describe(exc: BaseException) -> str:
    message = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _import(path: Path, manifest: Manifest, directory: Path) -> ModuleType:
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserCodeError(
            f"model '{manifest.model}': {manifest.entry_point} cannot be imported as a module."
        )
    module = importlib.util.module_from_spec(spec)
    # Importable by its own name (pickles of classes it defines load again in the serving image) and its
    # sibling files importable too (`from layers import Net`).
    if str(directory) not in sys.path:
        sys.path.insert(0, str(directory))
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        sys.modules.pop(name, None)
        file = Path(exc.filename).name if exc.filename else manifest.entry_point
        raise UserCodeError(
            f"model '{manifest.model}': {manifest.entry_point} does not import: SyntaxError: {exc.msg} "
            f"({file}, line {exc.lineno})."
        ) from None
    except ImportError as exc:
        sys.modules.pop(name, None)
        hint = (
            f"; add {exc.name} to the model's {REQUIREMENTS}"
            if isinstance(exc, ModuleNotFoundError) and exc.name
            else ""
        )
        raise UserCodeError(
            f"model '{manifest.model}': {manifest.entry_point} does not import: {_describe(exc)}"
            f"{_where(exc.__traceback__, directory)}{hint}."
        ) from None
    except (Exception, SystemExit) as exc:  # what the module runs at import is the user's to fix
        sys.modules.pop(name, None)
        raise UserCodeError(
            f"model '{manifest.model}': {manifest.entry_point} does not import: {_describe(exc)}"
            f"{_where(exc.__traceback__, directory)}."
        ) from None
    return module


def _check_functions(module: ModuleType, manifest: Manifest) -> None:
    for name in REQUIRED:
        function = getattr(module, name, None)
        expected = ", ".join(SIGNATURES[name])
        if function is None or not callable(function):
            what = (
                "has no function"
                if function is None
                else f"defines {name} as a {type(function).__name__}, not the function"
            )
            raise UserCodeError(
                f"model '{manifest.model}': {manifest.entry_point} {what} {name}({expected}); the module "
                f"must define {', '.join(REQUIRED)} (containers/train/CONTRACT.md)."
            )
        try:
            inspect.signature(function).bind(*SIGNATURES[name])
        except TypeError as exc:
            raise UserCodeError(
                f"model '{manifest.model}': {name}() in {manifest.entry_point} cannot be called as "
                f"{name}({expected}): {exc}."
            ) from None
        except ValueError:
            continue  # no signature to inspect (a builtin): the call itself will tell


@dataclass(frozen=True)
class UserCode:
    """The loaded module of one model, with its manifest."""

    manifest: Manifest
    directory: Path
    module: ModuleType

    @property
    def model(self) -> str:
        return self.manifest.model

    def call(self, name: str, *args: Any) -> Any:
        """The user's function `name` called with `args`; any exception becomes a UserCodeError that names
        the model, the function and the innermost line of the user's files it came from."""
        function = getattr(self.module, name)
        try:
            return function(*args)
        except Exception as exc:  # whatever the user's code raises is reported, never crashed on
            where = _where(exc.__traceback__, self.directory)
            raise UserCodeError(f"model '{self.model}': {name}() raised {_describe(exc)}{where}.") from exc
        except SystemExit as exc:
            raise UserCodeError(
                f"model '{self.model}': {name}() called sys.exit({exc.code!r})"
                f"{_where(exc.__traceback__, self.directory)}; return or raise instead."
            ) from None


def load_usercode(directory: Path) -> UserCode:
    """The model's module from `directory` (an image's `usercode/`): manifest, requirements installed,
    the entry point's bytes the ones staged, the module imported, each REQUIRED function callable."""
    directory = directory.resolve()
    manifest = _read_manifest(directory)
    path = directory / manifest.entry_point
    if not path.is_file():
        raise UserCodeError(
            f"model '{manifest.model}': the entry point {manifest.entry_point} is missing from {directory}."
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != manifest.sha256:
        raise UserCodeError(
            f"model '{manifest.model}': {manifest.entry_point} is not the file staged into the image "
            f"(sha256 {digest}, the manifest says {manifest.sha256})."
        )
    check_requirements(directory, manifest.model)
    module = _import(path, manifest, directory)
    _check_functions(module, manifest)
    return UserCode(manifest, directory, module)


def _expected_shape(rows: int, objective: str, num_class: int | None) -> str:
    if objective == "multi:softprob":
        columns = num_class if num_class else "k >= 2"
        return f"({rows}, {columns}) for objective multi:softprob (one probability per class)"
    if objective == "binary:logistic":
        return f"({rows},) for objective binary:logistic (the probability of class 1)"
    return f"({rows},) for objective {objective} (one prediction per row)"


def _shape_hint(shape: tuple[int, ...], rows: int, objective: str) -> str:
    if objective == "binary:logistic" and shape == (rows, 2):
        return "; return the second column (e.g. predict_proba(X)[:, 1])"
    if objective != "multi:softprob" and shape == (rows, 1):
        return "; flatten it (e.g. .ravel())"
    return ""


def check_scores(
    model_name: str, scores: Any, rows: int, objective: str, num_class: int | None
) -> FloatArray:
    """`predict`'s output as float64 scores, or a UserCodeError naming predict() and what is wrong: the
    shape for the objective, a non-finite value, a probability outside [0, 1]."""
    start = f"model '{model_name}': predict()"
    try:
        values = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UserCodeError(
            f"{start} returned a {type(scores).__name__} that is not an array of numbers ({exc}); "
            f"expected {_expected_shape(rows, objective, num_class)}."
        ) from None
    shape = tuple(values.shape)
    if objective == "multi:softprob":
        wrong = len(shape) != 2 or shape[0] != rows or shape[1] < 2 or (num_class and shape[1] != num_class)
    else:
        wrong = shape != (rows,)
    if wrong:
        raise UserCodeError(
            f"{start} returned shape {shape}; expected {_expected_shape(rows, objective, num_class)}"
            f"{_shape_hint(shape, rows, objective)}."
        )
    bad = ~np.isfinite(values)
    if bad.any():
        where = np.argwhere(bad)
        shown = ", ".join(f"row {int(i[0])}: {values[tuple(i)]}" for i in where[:_SHOWN_VALUES])
        raise UserCodeError(
            f"{start} returned {int(bad.sum())} value(s) that are not finite numbers ({shown}); every score "
            "must be finite."
        )
    if objective in ("binary:logistic", "multi:softprob"):
        outside = (values < 0) | (values > 1)
        if outside.any():
            where = np.argwhere(outside)
            shown = ", ".join(f"row {int(i[0])}: {values[tuple(i)]:.6g}" for i in where[:_SHOWN_VALUES])
            raise UserCodeError(
                f"{start} returned {int(outside.sum())} value(s) outside [0, 1] ({shown}); objective "
                f"{objective} takes probabilities, not raw scores or class labels."
            )
    return values
