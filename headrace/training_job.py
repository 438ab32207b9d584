"""The training container's hyperparameters: one model for both sides of containers/train/CONTRACT.md.

The pipeline fills a training job's `HyperParameters` from a model config with `hyperparameters_for`; the
container parses the very same strings back with `Hyperparameters.from_strings`. Both are pure and
deterministic, so a synthesized template changes only when the model config does.

This module is the contract, not the config: it reads a model through the `TrainableModel` protocol and
raises `HyperparameterError` (or `ReservedHyperparameter`), which headrace/config.py turns into its own
messages. It imports nothing from headrace/config.py, so the two never import each other.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Final, Literal, Protocol, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from headrace.tuning_limits import ADDED_BY_SAGEMAKER, MAX_HYPERPARAMETERS

Objective = Literal["binary:logistic", "reg:squarederror", "multi:softprob"]
Device = Literal["auto", "cpu", "cuda"]

DEFAULT_NUM_ROUND: Final = 100
DEFAULT_EARLY_STOPPING_ROUNDS: Final = 10

# The metrics each objective can report per round (XGBoost's names) and in the evaluation.
METRICS_BY_OBJECTIVE: Final[dict[str, tuple[str, ...]]] = {
    "binary:logistic": ("auc", "logloss", "error"),
    "reg:squarederror": ("rmse", "mae"),
    "multi:softprob": ("mlogloss", "merror"),
}
DEFAULT_METRIC: Final[dict[str, str]] = {
    "binary:logistic": "auc",
    "reg:squarederror": "rmse",
    "multi:softprob": "mlogloss",
}
# Keys the pipeline sets from the rest of a model config, so a model's own hyperparameters may not.
RESERVED: Final = frozenset(
    {"target", "objective", "eval_metric", "categorical", "slice_by", "seed", "device"}
)
# Keys SageMaker itself may add to a job's hyperparameters (script mode, tuning jobs): never XGBoost's.
_SAGEMAKER_PREFIXES: Final = ("sagemaker_", "_")

Fraction = Annotated[float, Field(gt=0, le=1)]
NonNegative = Annotated[float, Field(ge=0)]


class HyperparameterError(ValueError):
    """A hyperparameter that cannot be used; `name` is the hyperparameter, the message says why."""

    def __init__(self, name: str, problem: str) -> None:
        self.name = name
        self.problem = problem
        super().__init__(f"hyperparameter '{name}': {problem}")


class ReservedHyperparameter(HyperparameterError):
    """A model's own hyperparameter that the pipeline sets from the rest of its config (one of RESERVED)."""

    def __init__(self, name: str) -> None:
        super().__init__(name, "is set by the pipeline from the rest of the model config; remove it")


def metric_line(epoch: int, metric: str, train: float | None, validation: float) -> str:
    """The per-round line CONTRACT.md promises; SageMaker's metric definitions scrape
    `validation-<metric>=...;` from the job's log."""
    trained = f" train-{metric}={train:.6g};" if train is not None else ""
    return f"[{epoch}]{trained} validation-{metric}={validation:.6g};"


def best_metric_line(epoch: int, metric: str, validation: float) -> str:
    """The run's last metric line, after training: the validation score of the epoch whose model it keeps.
    A metric definition takes the last value a job prints, so a tuning job's objective is the kept model's."""
    return f"[best {epoch}] validation-{metric}={validation:.6g};"


def _json_text(value: Any) -> Any:
    # SageMaker passes every hyperparameter as a string; structured ones are JSON inside that string.
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None
    return value


def hyperparameter_text(value: Any) -> str:
    """A hyperparameter value as SageMaker passes it: a string (true/false, JSON for lists and mappings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


_text = hyperparameter_text


class PipelineHyperparameters(BaseModel):
    """The keys the pipeline sets from a model config, which every trainer reads (the built-in one and a
    custom model's run); any other key is the model's own, passed on as given."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    target: Annotated[str, Field(min_length=1)]
    objective: Objective = "binary:logistic"
    eval_metric: str | None = None
    categorical: dict[str, list[str]] = Field(default_factory=dict)
    slice_by: list[str] = Field(default_factory=list)
    seed: int = 0
    device: Device = "auto"
    # 0 turns early stopping off.
    early_stopping_rounds: Annotated[int, Field(ge=0)] = DEFAULT_EARLY_STOPPING_ROUNDS
    num_class: Annotated[int, Field(ge=2)] | None = None

    @field_validator("categorical", "slice_by", mode="before")
    @classmethod
    def _decode_json(cls, value: Any) -> Any:
        return _json_text(value)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        allowed = METRICS_BY_OBJECTIVE[self.objective]
        if self.eval_metric is not None and self.eval_metric not in allowed:
            raise HyperparameterError(
                "eval_metric",
                f"'{self.eval_metric}' does not fit objective {self.objective} "
                f"(use one of {', '.join(allowed)})",
            )
        return self

    @property
    def metric(self) -> str:
        return self.eval_metric or DEFAULT_METRIC[self.objective]

    def to_strings(self) -> dict[str, str]:
        """SageMaker's HyperParameters: every value a string, keys sorted so templates are stable."""
        values = self.model_dump(by_alias=True, exclude_none=True)
        return {key: _text(values[key]) for key in sorted(values)}

    @classmethod
    def from_strings(cls, raw: Mapping[str, Any]) -> Self:
        """Parse a job's hyperparameters; raises `HyperparameterError` naming the first bad one."""
        kept = {k: v for k, v in raw.items() if not k.startswith(_SAGEMAKER_PREFIXES)}
        try:
            return cls.model_validate(kept)
        except ValidationError as exc:
            raise _first_problem(exc, kept) from None


class Hyperparameters(PipelineHyperparameters):
    """What the built-in XGBoost trainer accepts. Unknown keys are XGBoost parameters, passed on as given.
    A custom model's own keys are not checked against these (LightGBM's max_depth -1 is not XGBoost's)."""

    num_round: Annotated[int, Field(ge=1, le=100_000)] = DEFAULT_NUM_ROUND

    # XGBoost parameters checked here, so a bad value fails before any data is read and names itself.
    max_depth: Annotated[int, Field(ge=0)] | None = None
    eta: NonNegative | None = None
    learning_rate: NonNegative | None = None
    subsample: Fraction | None = None
    colsample_bytree: Fraction | None = None
    colsample_bylevel: Fraction | None = None
    colsample_bynode: Fraction | None = None
    min_child_weight: NonNegative | None = None
    gamma: NonNegative | None = None
    reg_lambda: NonNegative | None = Field(default=None, alias="lambda")
    alpha: NonNegative | None = None
    max_bin: Annotated[int, Field(ge=2)] | None = None
    max_leaves: Annotated[int, Field(ge=0)] | None = None
    max_delta_step: NonNegative | None = None
    scale_pos_weight: NonNegative | None = None
    max_cat_to_onehot: Annotated[int, Field(ge=1)] | None = None
    # Categorical splits need a histogram method; `hist` is what runs on both CPU and GPU.
    tree_method: Literal["hist", "approx"] | None = None
    grow_policy: Literal["depthwise", "lossguide"] | None = None

    def xgboost_params(self) -> dict[str, Any]:
        """The parameters for `xgboost.train`, device and tree method aside (the trainer decides those)."""
        checked = self.model_dump(
            by_alias=True,
            exclude_none=True,
            exclude={
                "target",
                "eval_metric",
                "categorical",
                "slice_by",
                "num_round",
                "early_stopping_rounds",
                "device",
                "tree_method",
            },
        )
        checked["eval_metric"] = self.metric
        return checked


def _first_problem(exc: ValidationError, raw: Mapping[str, Any]) -> HyperparameterError:
    error = exc.errors()[0]
    context = error.get("ctx") or {}
    if isinstance(context.get("error"), HyperparameterError):
        found: HyperparameterError = context["error"]
        return found
    name = str(error["loc"][0]) if error["loc"] else "(all)"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return HyperparameterError(name, "missing, and it is required")
    if name in raw:
        return HyperparameterError(name, f"{raw[name]!r} is not valid: {message}")
    return HyperparameterError(name, message)


class _Column(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def categories(self) -> Sequence[str] | None: ...


class _Schema(Protocol):
    @property
    def columns(self) -> Sequence[_Column]: ...
    @property
    def target(self) -> str: ...


class _Trainer(Protocol):
    @property
    def framework(self) -> str: ...
    @property
    def objective(self) -> str: ...
    @property
    def hyperparameters(self) -> Mapping[str, str | int | float | bool]: ...
    @property
    def seed(self) -> int: ...


class _Gate(Protocol):
    @property
    def metric(self) -> str: ...
    @property
    def slice_by(self) -> Sequence[str]: ...


class TrainableModel(Protocol):
    """What the contract reads of a model config (headrace.config.ModelConfig is one)."""

    @property
    def data(self) -> _Schema: ...
    @property
    def trainer(self) -> _Trainer: ...
    @property
    def gate(self) -> _Gate: ...


def hyperparameters_for(model: TrainableModel) -> dict[str, str]:
    """A training job's HyperParameters for `model`, as CreateTrainingJob takes them (all strings).

    Raises `ReservedHyperparameter` for a model hyperparameter the pipeline sets itself, else
    `HyperparameterError` naming the first value the container would refuse.
    """
    trainer = model.trainer
    clashes = sorted(RESERVED & set(trainer.hyperparameters))
    if clashes:
        raise ReservedHyperparameter(clashes[0])
    # "category" is ColumnType.CATEGORY's value: a StrEnum compares equal to its text.
    categorical = {c.name: list(c.categories or []) for c in model.data.columns if c.type == "category"}
    custom = trainer.framework == "custom"
    # num_round is the built-in trainer's; a custom model's fit gets only the keys its config sets.
    values: dict[str, Any] = {
        **({} if custom else {"num_round": DEFAULT_NUM_ROUND}),
        "early_stopping_rounds": DEFAULT_EARLY_STOPPING_ROUNDS,
        **trainer.hyperparameters,
        "target": model.data.target,
        "objective": trainer.objective,
        "eval_metric": model.gate.metric,
        "categorical": categorical,
        "slice_by": list(model.gate.slice_by),
        "seed": trainer.seed,
        "device": "auto",
    }
    parser = PipelineHyperparameters if custom else Hyperparameters
    return parser.from_strings({k: _text(v) for k, v in values.items()}).to_strings()


class TunedHyperparameterError(HyperparameterError):
    """A tuned hyperparameter (one of a model's tuning ranges) that cannot be tuned; `name` is the range's
    name, or "" for a problem of the ranges together."""


class _Range(Protocol):
    def edge_texts(self) -> list[str]: ...


class _Tuning(Protocol):
    @property
    def ranges(self) -> Mapping[str, _Range]: ...


class _TunedTrainer(_Trainer, Protocol):
    @property
    def tuning(self) -> _Tuning | None: ...


class TunableModel(Protocol):
    """A model config that may tune some hyperparameters (headrace.config.ModelConfig is one)."""

    @property
    def data(self) -> _Schema: ...
    @property
    def trainer(self) -> _TunedTrainer: ...
    @property
    def gate(self) -> _Gate: ...


def _canonical_names(parser: type[PipelineHyperparameters]) -> dict[str, str]:
    """Each name the parser knows a field by (its own, and an alias: `lambda` for reg_lambda) -> the field."""
    names: dict[str, str] = {}
    for name, info in parser.model_fields.items():
        names[name] = name
        if info.alias:
            names[info.alias] = name
    return names


def static_hyperparameters_for(model: TunableModel) -> dict[str, str]:
    """A tuning job's StaticHyperParameters for `model`: `hyperparameters_for(model)` less every tuned name
    (AWS takes each hyperparameter either as static or tuned). For a model without tuning, the same as
    `hyperparameters_for`.

    Raises `TunedHyperparameterError` for a tuned name the trainer does not take (built-in trainer: not one
    of `Hyperparameters`' fields; any trainer: one the pipeline sets, or SageMaker's own), one also fixed in
    the model's hyperparameters, or a range whose edge value the trainer would refuse.
    """
    values = hyperparameters_for(model)
    tuning = model.trainer.tuning
    if tuning is None:
        return values
    trainer = model.trainer
    parser = PipelineHyperparameters if trainer.framework == "custom" else Hyperparameters
    known = _canonical_names(parser)
    fixed = {known.get(name, name) for name in trainer.hyperparameters}
    tuned: set[str] = set()
    for name, spec in tuning.ranges.items():
        canonical = known.get(name, name)
        _check_tuned_name(name, canonical, parser, fixed)
        tuned.add(canonical)
        # An edge of the range, given to the trainer as SageMaker would, must parse as the static ones do.
        for text in spec.edge_texts():
            try:
                parser.from_strings({**values, name: text})
            except HyperparameterError as exc:
                raise TunedHyperparameterError(name, f"this range gives the trainer {exc.problem}") from None
    static = {k: v for k, v in values.items() if known.get(k, k) not in tuned}
    _check_total(len(static), len(tuning.ranges))
    return static


def _check_tuned_name(
    name: str, canonical: str, parser: type[PipelineHyperparameters], fixed: set[str]
) -> None:
    if canonical in RESERVED or name.startswith(_SAGEMAKER_PREFIXES):
        raise TunedHyperparameterError(
            name, "is set by the pipeline (or by SageMaker) for every trial and cannot be tuned"
        )
    if parser is Hyperparameters and canonical not in parser.model_fields:
        tunable = sorted(
            info.alias or field for field, info in parser.model_fields.items() if field not in RESERVED
        )
        raise TunedHyperparameterError(
            name,
            f"is not a hyperparameter the built-in XGBoost trainer checks, so a tuned value could not be "
            f"validated (tune one of {', '.join(tunable)})",
        )
    # A name is either static or tuned in a tuning job: SageMaker's own SDK drops a static hyperparameter
    # that is also given a range before it calls CreateHyperParameterTuningJob
    # (https://github.com/aws/sagemaker-python-sdk/pull/931); here the config says which one it meant.
    if canonical in fixed:
        raise TunedHyperparameterError(
            name, "is also fixed in the model's hyperparameters; a hyperparameter is either static or tuned"
        )


def _check_total(static: int, tuned: int) -> None:
    # "You can use up to 100 hyperparameters in total (static + tunable)", SageMaker's own
    # _tuning_objective_metric included
    # (https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-define-ranges.html).
    total = static + tuned + ADDED_BY_SAGEMAKER
    if total > MAX_HYPERPARAMETERS:
        raise TunedHyperparameterError(
            "",
            f"{static} static and {tuned} tuned hyperparameters, with SageMaker's _tuning_objective_metric, "
            f"make {total}: a tuning job takes at most {MAX_HYPERPARAMETERS}",
        )
