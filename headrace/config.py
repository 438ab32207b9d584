"""The model config: one pydantic model per described model, read by CDK, the handlers and the local plane.

Each model lives under `models/` either as one YAML file, `<name>.yaml`, or as a folder, `<name>/`, holding
`model.yaml` and, for `trainer.framework: custom`, the model's own module (`model.py`, with fit, predict,
save and load: containers/train/CONTRACT.md) and optionally its `requirements.txt`. A deployment is every
model there. A config that does not validate raises `ConfigError`, whose message names the file, the field
and the problem.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from headrace.metric_direction import ObjectiveType, UnknownMetric, objective_type
from headrace.tuning_limits import (
    MAX_CATEGORICAL_VALUES,
    MAX_PARALLEL_TRAINING_JOBS,
    MAX_TRAINING_JOBS,
    MAX_TUNED_HYPERPARAMETERS,
    MAX_VALUE_LENGTH,
    Strategy,
)

MODEL_NAME_PATTERN = r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$"
DEFAULT_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
# A model folder's config file: models/<name>/model.yaml.
MODEL_FILE = "model.yaml"
# The user's module: a plain file name inside the model folder, importable by path.
ENTRY_POINT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*\.py$"
# What the training and serving images import by these names (containers/*/Dockerfile, /opt/program).
CONTAINER_MODULES = frozenset({"headrace", "trainer", "inference", "train", "serve", "usercode"})


class Strict(BaseModel):
    """Base for config sections: unknown keys are errors, so a typo never becomes a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnType(StrEnum):
    INTEGER = "integer"
    FLOAT = "float"
    STRING = "string"
    CATEGORY = "category"
    BOOLEAN = "boolean"


class Column(Strict):
    name: Annotated[str, Field(min_length=1, max_length=128)]
    type: ColumnType
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: list[str] | None = None
    description: str = ""

    @model_validator(mode="after")
    def _rules_fit_type(self) -> Column:
        numeric = self.type in (ColumnType.INTEGER, ColumnType.FLOAT)
        if (self.min is not None or self.max is not None) and not numeric:
            raise ValueError(f"min/max apply to integer and float columns, not {self.type.value}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        if self.type is ColumnType.CATEGORY and not self.categories:
            raise ValueError("a category column needs a non-empty 'categories' list")
        if self.categories is not None and self.type is not ColumnType.CATEGORY:
            raise ValueError(f"'categories' applies to category columns, not {self.type.value}")
        return self


class DataSchema(Strict):
    columns: Annotated[list[Column], Field(min_length=2)]
    target: str
    min_rows: Annotated[int, Field(ge=1)] = 100
    max_file_mb: Annotated[float, Field(gt=0, le=10_240)] = 512.0
    # Share of nulls tolerated in a nullable column before the file is rejected as a "NaN flood".
    max_null_fraction: Annotated[float, Field(ge=0, le=1)] = 0.2

    @model_validator(mode="after")
    def _target_is_a_column(self) -> DataSchema:
        names = [c.name for c in self.columns]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate column names: {', '.join(duplicates)}")
        if self.target not in names:
            raise ValueError(f"target '{self.target}' is not one of the columns ({', '.join(names)})")
        return self

    @property
    def features(self) -> list[Column]:
        return [c for c in self.columns if c.name != self.target]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def fingerprint(self) -> str:
        """Stable hash of what a file must look like (names, types, order); changes when the schema does."""
        shape = [[c.name, c.type.value] for c in self.columns] + [["__target__", self.target]]
        return hashlib.sha256(json.dumps(shape).encode()).hexdigest()[:16]


HyperparameterValue = str | int | float | bool


class FieldProblem(ValueError):
    """A section's rule broken at one of its fields (a rule across fields, found by a model validator):
    `_describe` names `field` after the section's own place, as trainer.tuning.max_parallel_jobs."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(problem)


RangeType = Literal["continuous", "integer", "categorical"]


class ParameterRange(Strict):
    """One tuned hyperparameter's search space, as SageMaker's ParameterRanges take it
    (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ParameterRanges.html).

    `type` may be left out: `values` make a categorical range, whole-number `min` and `max` an integer one
    (write 2.0 for a continuous range from 2), anything else a continuous one.
    """

    type: RangeType
    min: int | float | None = None
    max: int | float | None = None
    values: list[HyperparameterValue] | None = None
    scaling: Literal["auto", "linear", "logarithmic", "reverse_logarithmic"] = "auto"

    @model_validator(mode="before")
    @classmethod
    def _infer_type(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("type") is not None:
            return data
        whole = all(type(data.get(bound)) is int for bound in ("min", "max"))
        inferred = "categorical" if data.get("values") is not None else "integer" if whole else "continuous"
        return {**data, "type": inferred}

    @field_validator("min", "max", mode="before")
    @classmethod
    def _a_number(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"{value} is not a number")
        return value

    @model_validator(mode="after")
    def _fits_type(self) -> ParameterRange:
        if self.type == "categorical":
            self._check_categorical()
        else:
            self._check_bounds()
        return self

    def _check_categorical(self) -> None:
        if self.min is not None or self.max is not None:
            raise ValueError("a categorical range takes values, not min/max")
        # CategoricalParameterRange has no ScalingType
        # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CategoricalParameterRange.html).
        if self.scaling != "auto":
            raise ValueError("scaling applies to continuous and integer ranges, not categorical ones")
        texts = self.value_texts()
        if not texts:
            raise ValueError("a categorical range needs at least one value")
        # CategoricalParameterRange.Values: 1 to 30 items of at most 256 characters each.
        if len(texts) > MAX_CATEGORICAL_VALUES:
            raise ValueError(
                f"{len(texts)} values: SageMaker takes at most {MAX_CATEGORICAL_VALUES} per range"
            )
        long = [t for t in texts if len(t) > MAX_VALUE_LENGTH]
        if long:
            raise ValueError(f"value '{long[0][:40]}...' is over SageMaker's {MAX_VALUE_LENGTH} characters")
        repeated = sorted({t for t in texts if texts.count(t) > 1})
        if repeated:
            raise ValueError(f"values repeat: {', '.join(repeated)}")

    def _check_bounds(self) -> None:
        if self.values is not None:
            raise ValueError(
                f"a {self.type} range takes min and max, not values (values make it categorical)"
            )
        if self.min is None or self.max is None:
            raise ValueError(f"a {self.type} range needs both min and max")
        if self.type == "integer" and not all(float(b).is_integer() for b in (self.min, self.max)):
            raise ValueError(
                f"an integer range needs whole-number min and max, not {self.min} and {self.max}"
            )
        if self.min >= self.max:
            raise ValueError(
                f"min ({self.min}) must be less than max ({self.max}); a single value is not tuned: set it "
                "in trainer.hyperparameters instead"
            )
        # "Logarithmic scaling works only for ranges that have only values greater than 0."; "Reverse
        # logarithmic scaling works only for ranges that are entirely within the range 0<=x<1.0", and
        # IntegerParameterRange's ScalingType lists no reverse logarithmic scale
        # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ContinuousParameterRange.html,
        # https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_IntegerParameterRange.html).
        if self.scaling == "logarithmic" and self.min <= 0:
            raise ValueError(f"logarithmic scaling needs a range above 0, and min is {self.min}")
        if self.scaling == "reverse_logarithmic":
            if self.type == "integer":
                raise ValueError("reverse_logarithmic scaling applies to continuous ranges only")
            if not (self.min >= 0 and self.max < 1):
                raise ValueError(
                    f"reverse_logarithmic scaling needs a range within [0, 1), not [{self.min}, {self.max}]"
                )

    def value_texts(self) -> list[str]:
        """A categorical range's values as SageMaker passes them to the trainer (strings)."""
        from headrace.training_job import hyperparameter_text

        return [hyperparameter_text(v) for v in self.values or []]

    def edge_texts(self) -> list[str]:
        """Strings a trial may get at the edges of the range, as SageMaker passes them: min and max (and, for
        a continuous range, the fraction just above min, which an integer hyperparameter refuses), or every
        categorical value."""
        if self.type == "categorical":
            return self.value_texts()
        assert self.min is not None and self.max is not None  # _check_bounds
        if self.type == "integer":
            return [str(int(self.min)), str(int(self.max))]
        low, high = float(self.min), float(self.max)
        return [str(low), str(math.nextafter(low, high)), str(high)]

    @property
    def size(self) -> int | None:
        """How many distinct values the range holds; None for a continuous one."""
        if self.type == "categorical":
            return len(self.values or [])
        if self.type == "integer" and self.min is not None and self.max is not None:
            return int(self.max) - int(self.min) + 1
        return None


class TuningConfig(Strict):
    """`trainer.tuning`: train with SageMaker automatic model tuning (CreateHyperParameterTuningJob), whose
    best trial by the gate's metric on the validation channel becomes the candidate. Absent: one training job.

    strategy: SageMaker's Strategy (Bayesian, Random, Grid, Hyperband). max_jobs and max_parallel_jobs:
    ResourceLimits' MaxNumberOfTrainingJobs and MaxParallelTrainingJobs (Grid: max_jobs defaults to, and must
    equal, the number of combinations of its categorical values). early_stopping: SageMaker stops trials
    unlikely to beat the completed ones (TrainingJobEarlyStoppingType Auto; not with Hyperband, which stops
    trials itself). ranges: hyperparameter name -> ParameterRange; each tuned name is left out of the trials'
    static hyperparameters (headrace.training_job.static_hyperparameters_for).
    """

    strategy: Strategy = "Bayesian"
    max_jobs: Annotated[int, Field(ge=1)] = 20
    # ResourceLimits.MaxParallelTrainingJobs: at least 1; at most 100 per tuning job (10 unless the account's
    # quota is raised, https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-limits.html).
    max_parallel_jobs: Annotated[int, Field(ge=1, le=MAX_PARALLEL_TRAINING_JOBS)] = 2
    early_stopping: bool = False
    ranges: dict[str, ParameterRange]

    @model_validator(mode="before")
    @classmethod
    def _grid_runs_every_combination(cls, data: Any) -> Any:
        # "You do not need to specify the MaxNumberOfTrainingJobs. The number of training jobs created by the
        # tuning job is automatically calculated to be the total number of distinct categorical combinations"
        # (https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-how-it-works.html).
        if not isinstance(data, dict) or data.get("strategy") != "Grid" or data.get("max_jobs") is not None:
            return data
        ranges = data.get("ranges")
        if not isinstance(ranges, dict) or not ranges:
            return data
        counts = [
            len(r["values"])
            for r in ranges.values()
            if isinstance(r, dict) and isinstance(r.get("values"), list)
        ]
        if len(counts) == len(ranges) and math.prod(counts) >= 1:
            return {**data, "max_jobs": math.prod(counts)}
        return data

    @model_validator(mode="after")
    def _aws_accepts(self) -> TuningConfig:
        self._check_ranges()
        self._check_limits()
        self._check_strategy()
        return self

    def _check_ranges(self) -> None:
        if not self.ranges:
            raise FieldProblem("ranges", "name at least one hyperparameter to tune, with its range")
        # "the sum of the number of hyperparameters for all the ranges can't exceed the maximum number
        # specified" (30, https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ParameterRanges.html).
        if len(self.ranges) > MAX_TUNED_HYPERPARAMETERS:
            raise FieldProblem(
                "ranges", f"{len(self.ranges)} ranges: SageMaker tunes at most {MAX_TUNED_HYPERPARAMETERS}"
            )
        # ContinuousParameterRange.Name and the others: at most 256 characters (API_ParameterRanges.html).
        for name in self.ranges:
            if not name or len(name) > MAX_VALUE_LENGTH:
                raise FieldProblem(f"ranges.{name}", f"a name of 1 to {MAX_VALUE_LENGTH} characters")

    def _check_limits(self) -> None:
        # Training jobs per tuning job: 750; Random search's, raised, 10000 (automatic-model-tuning-limits).
        most = MAX_TRAINING_JOBS[self.strategy]
        if self.max_jobs > most:
            raise FieldProblem("max_jobs", f"{self.max_jobs} is over SageMaker's {most} for {self.strategy}")
        if self.max_parallel_jobs > self.max_jobs:
            raise FieldProblem(
                "max_parallel_jobs",
                f"{self.max_parallel_jobs} is greater than max_jobs ({self.max_jobs}): a tuning job never "
                "runs more trials at once than it runs in all",
            )

    def _check_strategy(self) -> None:
        if self.strategy == "Grid":
            self._check_grid()
        elif self.strategy == "Hyperband" and self.early_stopping:
            # "Because the Hyperband strategy has its own advanced internal early stopping mechanism,
            # TrainingJobEarlyStoppingType must be OFF to use Hyperband"
            # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_HyperParameterTuningJobConfig.html).
            raise FieldProblem(
                "early_stopping", "Hyperband stops poor trials itself: early_stopping must be false with it"
            )
        sizes = [spec.size for _, spec in self.ranges.items()]
        if self.strategy != "Grid" and all(size is not None for size in sizes):
            # Without a continuous range the space is finite, and SageMaker refuses a job that would run more
            # trials than it has combinations: "The total number of hyperparameter combinations for the
            # provided ranges ... must be equal or greater than the value of MaxNumberOfJobs"
            # (a ValidationException, https://github.com/aws/amazon-sagemaker-operator-for-k8s/issues/123).
            combinations = math.prod(size or 0 for size in sizes)
            if combinations < self.max_jobs:
                raise FieldProblem(
                    "max_jobs",
                    f"{self.max_jobs} trials, but the ranges hold only {combinations} combinations: lower "
                    "max_jobs or widen a range",
                )

    def _check_grid(self) -> None:
        # "Only categorical parameters are supported when using the grid search strategy"; "If specified,
        # the value of MaxNumberOfTrainingJobs should equal the total number of distinct categorical
        # combinations possible" (automatic-model-tuning-how-it-works.html, Grid search).
        for name, spec in self.ranges.items():
            if spec.type != "categorical":
                raise FieldProblem(
                    f"ranges.{name}",
                    f"Grid searches categorical ranges only, and this one is {spec.type}: list its values",
                )
        combinations = math.prod(len(spec.values or []) for spec in self.ranges.values())
        if self.max_jobs != combinations:
            raise FieldProblem(
                "max_jobs",
                f"Grid runs every combination of the values, {combinations}, and max_jobs is "
                f"{self.max_jobs}: leave max_jobs out",
            )

    def continuous(self) -> list[tuple[str, ParameterRange]]:
        return [(name, spec) for name, spec in self.ranges.items() if spec.type == "continuous"]

    def integer(self) -> list[tuple[str, ParameterRange]]:
        return [(name, spec) for name, spec in self.ranges.items() if spec.type == "integer"]

    def categorical(self) -> list[tuple[str, ParameterRange]]:
        return [(name, spec) for name, spec in self.ranges.items() if spec.type == "categorical"]

    @staticmethod
    def objective_type(metric: str) -> ObjectiveType:
        """HyperParameterTuningJobObjective.Type for the gate's `metric`: Maximize where higher is better
        (headrace.metric_direction, the table the gate reads); raises UnknownMetric for a metric not in it."""
        return objective_type(metric)


class TrainerConfig(Strict):
    # xgboost: Headrace's built-in trainer. custom: the model folder's own module (entry_point) trains and
    # predicts, inside images built from that folder (stacks/assets.py stage_usercode).
    framework: Literal["xgboost", "custom"] = "xgboost"
    entry_point: str = "model.py"
    objective: Literal["binary:logistic", "reg:squarederror", "multi:softprob"] = "binary:logistic"
    hyperparameters: dict[str, HyperparameterValue] = Field(default_factory=dict)
    instance_type: str = "ml.m5.xlarge"
    instance_count: Annotated[int, Field(ge=1, le=20)] = 1
    use_spot: bool = True
    max_runtime_s: Annotated[int, Field(ge=60, le=432_000)] = 3_600
    max_wait_s: Annotated[int, Field(ge=60, le=432_000)] = 7_200
    validation_fraction: Annotated[float, Field(gt=0, lt=0.9)] = 0.2
    # The held-out split the gate judges; None: as large as validation (60/20/20 by default). On small data
    # (a few hundred rows) a larger test share (0.25-0.3) steadies the gate's metric (README: splits).
    test_fraction: Annotated[float, Field(gt=0, lt=0.9)] | None = None
    seed: int = 42
    # None: one training job per run; set: a tuning job (TuningConfig).
    tuning: TuningConfig | None = None

    @field_validator("instance_type")
    @classmethod
    def _sagemaker_instance(cls, value: str) -> str:
        if not re.fullmatch(r"ml\.[a-z0-9]+\.[a-z0-9]+", value):
            raise ValueError(
                f"'{value}' is not a SageMaker instance type (like ml.m5.xlarge or ml.g5.xlarge)"
            )
        return value

    @field_validator("entry_point")
    @classmethod
    def _plain_module_file(cls, value: str) -> str:
        if not re.fullmatch(ENTRY_POINT_PATTERN, value):
            raise ValueError(
                f"'{value}' is not a plain Python file name (like model.py): the module lies directly in "
                "the model folder"
            )
        return value

    @model_validator(mode="after")
    def _wait_covers_runtime(self) -> TrainerConfig:
        # SageMaker rejects MaxWaitTimeInSeconds < MaxRuntimeInSeconds for managed spot training.
        if self.use_spot and self.max_wait_s < self.max_runtime_s:
            raise ValueError(
                f"max_wait_s ({self.max_wait_s}) must be >= max_runtime_s ({self.max_runtime_s})"
            )
        return self

    @model_validator(mode="after")
    def _splits_leave_training_rows(self) -> TrainerConfig:
        held = self.validation_fraction + self.held_out_fraction
        if held >= 1:
            field = "test_fraction" if self.test_fraction is not None else "validation_fraction"
            raise ValueError(
                f"{field}: validation ({self.validation_fraction}) and test ({self.held_out_fraction}) take "
                f"{held:.0%} of the rows together, leaving none to train on"
            )
        return self

    @property
    def held_out_fraction(self) -> float:
        """The test split's share of the rows."""
        return self.validation_fraction if self.test_fraction is None else self.test_fraction

    @property
    def uses_gpu(self) -> bool:
        return self.instance_type.split(".")[1].startswith(("g", "p"))


class GateConfig(Strict):
    metric: str = "auc"
    # Absolute floors a candidate must reach, metric name -> minimum.
    thresholds: dict[str, float] = Field(default_factory=lambda: {"auc": 0.7})
    # Largest drop of `metric` tolerated against the current approved champion.
    max_regression: Annotated[float, Field(ge=0)] = 0.01
    # With production data in a run: how much the candidate must beat the champion by on the same recent
    # holdout (headrace/training/gate.py); 0 still asks for strictly better.
    min_improvement: Annotated[float, Field(ge=0)] = 0.0
    # Largest gap of `metric` between the best and worst slice of each `slice_by` column.
    max_slice_gap: Annotated[float, Field(ge=0)] = 0.15
    slice_by: list[str] = Field(default_factory=list)
    approval: Literal["auto", "manual"] = "manual"


class AutoscalingConfig(Strict):
    """Target tracking on the variant's instance count (headrace/serving/autoscaling.py): Application Auto
    Scaling keeps SageMakerVariantInvocationsPerInstance (invocations per instance per minute) near the
    target, between min and max instances. SageMaker: min at least 1, max at least min
    (https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-add-policy.html)."""

    min_instances: Annotated[int, Field(ge=1, le=20)] = 1
    max_instances: Annotated[int, Field(ge=1, le=20)] = 4
    target_invocations_per_instance: Annotated[float, Field(gt=0)] = 1_000.0
    scale_in_cooldown_s: Annotated[int, Field(ge=0, le=86_400)] = 300
    scale_out_cooldown_s: Annotated[int, Field(ge=0, le=86_400)] = 60

    @model_validator(mode="after")
    def _min_within_max(self) -> AutoscalingConfig:
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"min_instances ({self.min_instances}) is greater than max_instances ({self.max_instances})"
            )
        return self


class RolloutConfig(Strict):
    # A canary or linear step is whole instances, at most half the fleet: an endpoint of one instance shifts
    # all at once, then bakes (headrace/serving/rollout.py); the steps apply from two instances on.
    strategy: Literal["canary", "linear", "all_at_once"] = "canary"
    canary_percent: Annotated[int, Field(ge=1, le=50)] = 10
    # SageMaker: "LinearStepSize ... must be 10-50% of the variant's total instance count"
    # (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_TrafficRoutingConfig.html).
    linear_step_percent: Annotated[int, Field(ge=10, le=50)] = 25
    wait_interval_s: Annotated[int, Field(ge=0, le=3_600)] = 300
    bake_s: Annotated[int, Field(ge=0, le=3_600)] = 600
    instance_type: str = "ml.m5.large"
    instance_count: Annotated[int, Field(ge=1, le=20)] = 1
    max_5xx_rate: Annotated[float, Field(ge=0, le=1)] = 0.01
    max_p99_latency_ms: Annotated[float, Field(gt=0)] = 200.0
    # Share of requests (and responses) data capture writes to S3, for drift checks.
    capture_percent: Annotated[int, Field(ge=0, le=100)] = 100
    # Cost: delete the endpoint after this many hours without an invocation (an hourly sweep,
    # headrace/serving/idle.py); None never does. Its endpoint configs and models stay, so approving a
    # version again or `headrace rollback MODEL VERSION` recreates it. At most 30 days.
    idle_hours: Annotated[int, Field(ge=1, le=720)] | None = None
    # None: the fleet keeps instance_count instances. Set: instance_count is where each new fleet starts,
    # within min_instances..max_instances, and Application Auto Scaling moves it with the traffic.
    autoscaling: AutoscalingConfig | None = None

    @model_validator(mode="after")
    def _start_within_scaling(self) -> RolloutConfig:
        scaling = self.autoscaling
        if scaling and not scaling.min_instances <= self.instance_count <= scaling.max_instances:
            raise ValueError(
                f"instance_count ({self.instance_count}) must lie within autoscaling.min_instances "
                f"({scaling.min_instances}) and autoscaling.max_instances ({scaling.max_instances}): "
                "a new fleet starts with instance_count instances"
            )
        return self


class RetrainData(Strict):
    """What a retraining run trains on (headrace/monitoring/retrain.py): the newest upload plus the datasets
    accepted within `history_days` (production ones too when `production`), at most `max_rows` rows, newest
    kept."""

    history_days: Annotated[int, Field(ge=0)] = 30
    production: bool = True
    max_rows: Annotated[int, Field(ge=1)] = 1_000_000


class MonitoringConfig(Strict):
    schedule: str = "rate(1 hour)"
    psi_threshold: Annotated[float, Field(gt=0)] = 0.2
    ks_pvalue: Annotated[float, Field(gt=0, lt=1)] = 0.01
    # Test every feature at ks_pvalue / features (Bonferroni), so ks_pvalue bounds the chance that a check
    # without drift flags any feature: at 0.01 per feature, 25 features would flag one in 22% of checks.
    bonferroni: bool = True
    min_rows: Annotated[int, Field(ge=1)] = 200
    cooldown_minutes: Annotated[int, Field(ge=0)] = 360
    max_retrains_per_day: Annotated[int, Field(ge=0)] = 2
    retrain_data: RetrainData = Field(default_factory=RetrainData)
    # The quality check: inferences captured within the last quality_window_hours, joined with every label
    # accepted up to now; fewer labelled rows than quality_min_labels judge nothing (never a breach).
    quality_schedule: str = "rate(1 day)"
    quality_window_hours: Annotated[int, Field(ge=1)] = 168
    quality_min_labels: Annotated[int, Field(ge=1)] = 200

    @field_validator("schedule", "quality_schedule")
    @classmethod
    def _schedule_expression(cls, value: str) -> str:
        if not re.fullmatch(r"rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\(.+\)", value):
            raise ValueError(f"'{value}' is not an EventBridge schedule expression (rate(1 hour), cron(...))")
        return value


class BatchConfig(Strict):
    """Batch scoring (`<model>/batch/incoming/`): the transform job's resources and how it feeds the serving
    container (CreateTransformJob, https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html)."""

    instance_type: str = "ml.m5.xlarge"
    # TransformResources.InstanceCount: SageMaker splits the input's files across the instances.
    instance_count: Annotated[int, Field(ge=1, le=20)] = 1
    # MaxPayloadInMB: 0-100; the records of one mini-batch fit in it (6 is SageMaker's default).
    max_payload_mb: Annotated[int, Field(ge=1, le=100)] = 6
    # MaxConcurrentTransforms per instance; 0 leaves SageMaker's default.
    max_concurrent_transforms: Annotated[int, Field(ge=0)] = 0
    batch_strategy: Literal["MultiRecord", "SingleRecord"] = "MultiRecord"

    @field_validator("instance_type")
    @classmethod
    def _sagemaker_instance(cls, value: str) -> str:
        if not re.fullmatch(r"ml\.[a-z0-9]+\.[a-z0-9]+", value):
            raise ValueError(f"'{value}' is not a SageMaker instance type (like ml.m5.xlarge)")
        return value


class ModelConfig(Strict):
    name: Annotated[str, Field(pattern=MODEL_NAME_PATTERN)]
    description: str = ""
    data: DataSchema = Field(alias="schema")
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    # The model's folder (models/<name>/) when it has one: set by load_model_file, never serialized (the
    # Lambda functions' models.json has no folder; only synth stages its code into images).
    _code_dir: Path | None = PrivateAttr(default=None)

    @property
    def code_dir(self) -> Path | None:
        return self._code_dir

    @property
    def entry_point_file(self) -> Path | None:
        """The custom module's file: None for the built-in trainer or a config not read from a folder."""
        if self.trainer.framework != "custom" or self._code_dir is None:
            return None
        return self._code_dir / self.trainer.entry_point

    @model_validator(mode="after")
    def _tuning_objective_known(self) -> ModelConfig:
        # A tuning job is told whether to maximize or minimize its objective, the gate's metric.
        if self.trainer.tuning is not None:
            try:
                self.trainer.tuning.objective_type(self.gate.metric)
            except UnknownMetric as exc:
                raise FieldProblem(
                    "gate.metric", f"trainer.tuning needs to know which way is better: {exc}"
                ) from None
        return self

    @model_validator(mode="after")
    def _slices_are_columns(self) -> ModelConfig:
        names = {c.name for c in self.data.columns}
        unknown = [s for s in self.gate.slice_by if s not in names]
        if unknown:
            raise ValueError(f"gate.slice_by names unknown columns: {', '.join(unknown)}")
        return self

    # S3 layout under the data bucket, one prefix tree per model.
    @property
    def incoming_prefix(self) -> str:
        return f"{self.name}/incoming/"

    @property
    def quarantine_prefix(self) -> str:
        return f"{self.name}/quarantine/"

    @property
    def datasets_prefix(self) -> str:
        return f"{self.name}/datasets/"

    @property
    def batch_prefix(self) -> str:
        """Batch scoring: drops in `incoming/`, validated input in `input/`, results in `output/`."""
        return f"{self.name}/batch/"


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file, the field and the problem."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.path = str(path)
        self.problems = problems
        listed = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid model config {self.path}:\n{listed}")


def _describe(error: Any) -> str:
    parts = [str(part) for part in error["loc"]]
    message = str(error["msg"]).removeprefix("Value error, ")
    found = (error.get("ctx") or {}).get("error")
    if isinstance(found, FieldProblem):
        parts.append(found.field)
        message = found.problem
    field = ".".join(parts) or "(top level)"
    if error["type"] == "extra_forbidden":
        message = "unknown field (check the spelling)"
    return f"{field}: {message}"


def parse_model(raw: Any, source: Path | str) -> ModelConfig:
    if not isinstance(raw, dict):
        raise ConfigError(source, [f"(top level): expected a mapping, got {type(raw).__name__}"])
    try:
        return ModelConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(e) for e in exc.errors()]) from None


def load_model_file(path: Path) -> ModelConfig:
    """One model: `<name>.yaml`, or `<name>/model.yaml` in its folder (which becomes its code_dir)."""
    # Imported here: Lambda functions read models.json and their runtime has no YAML parser.
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(path, [f"(file): not valid YAML: {exc}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, [f"(file): cannot read: {exc}"]) from None
    model = parse_model(raw, path)
    in_folder = path.name == MODEL_FILE
    expected = path.parent.name if in_folder else path.stem
    if model.name != expected:
        where = "folder" if in_folder else "file"
        raise ConfigError(path, [f"name: '{model.name}' must match the {where} name '{expected}'"])
    if in_folder:
        model._code_dir = path.parent.resolve()
    _check_custom_code(model, path)
    _check_hyperparameters(model, path)
    return model


def _check_custom_code(model: ModelConfig, path: Path) -> None:
    """A custom model's module exists in its folder, so a missing file fails here, not in an image build."""
    if model.trainer.framework != "custom":
        # Only the file says whether entry_point was written: models.json carries the default for every model.
        if "entry_point" in model.trainer.model_fields_set:
            raise ConfigError(
                path,
                [
                    f"trainer.entry_point: applies to framework custom; framework {model.trainer.framework} "
                    "uses Headrace's built-in trainer (remove entry_point, or set framework: custom)"
                ],
            )
        return
    if model.code_dir is None:
        folder = path.parent / model.name
        raise ConfigError(
            path,
            [
                f"trainer.framework: custom needs a model folder holding the config and its module: "
                f"move this file to {folder / MODEL_FILE} and put {model.trainer.entry_point} (fit, "
                "predict, save, load) beside it"
            ],
        )
    module = model.code_dir / model.trainer.entry_point
    if not module.is_file():
        raise ConfigError(
            path,
            [
                f"trainer.entry_point: {module} does not exist: the model folder needs its module, with "
                "fit, predict, save and load"
            ],
        )
    # The folder goes on the containers' import path (pickled classes load by module name), so a file
    # named like a standard module or one of the containers' own packages would replace it there.
    shadowing = sorted(
        p.name for p in model.code_dir.glob("*.py") if p.stem in sys.stdlib_module_names | CONTAINER_MODULES
    )
    if shadowing:
        raise ConfigError(
            path,
            [
                f"{model.code_dir}: {', '.join(shadowing)} would hide the module of the same name inside the "
                "images (the standard library's or Headrace's); rename it"
            ],
        )


# Where a model's reserved hyperparameters come from instead (training_job.RESERVED).
_RESERVED_SOURCES = "schema.target, trainer.objective, gate.metric, gate.slice_by, trainer.seed"


def _check_hyperparameters(model: ModelConfig, path: Path) -> None:
    """The trainer's own rules for hyperparameters, so a bad value fails here, not in a training job."""
    # Imported here, as yaml is: functions read models.json, never check, and skip its cold-start cost.
    from headrace.training_job import (
        HyperparameterError,
        ReservedHyperparameter,
        TunedHyperparameterError,
        static_hyperparameters_for,
    )

    try:
        # The static ones first (hyperparameters_for), then each tuned name and its range's edges.
        static_hyperparameters_for(model)
    except TunedHyperparameterError as exc:
        field = "trainer.tuning.ranges" + (f".{exc.name}" if exc.name else "")
        raise ConfigError(path, [f"{field}: {exc.problem}"]) from None
    except ReservedHyperparameter as exc:
        problem = (
            f"trainer.hyperparameters.{exc.name} is set from the rest of the config ({_RESERVED_SOURCES}); "
            "remove it"
        )
        raise ConfigError(path, [problem]) from None
    except HyperparameterError as exc:
        raise ConfigError(path, [f"trainer.hyperparameters.{exc.name}: {exc.problem}"]) from None


def models_directory(directory: Path | None = None) -> Path:
    """The directory `load_models` reads: `directory`, else $HEADRACE_MODELS_DIR, else the repo's models/."""
    return directory or Path(os.environ.get("HEADRACE_MODELS_DIR") or DEFAULT_MODELS_DIR)


def model_files(directory: Path) -> list[Path]:
    """Every model config in `directory`: `<name>.yaml` (or .yml) files, then `<name>/model.yaml` folders.

    Raises ConfigError for a folder that looks like a model's (it holds Python or YAML files) but has no
    model.yaml, and for a model given both as a file and as a folder."""
    files = sorted(directory.glob("*.yaml")) + sorted(directory.glob("*.yml"))
    folders: list[Path] = []
    for folder in sorted(p for p in directory.iterdir() if p.is_dir()) if directory.is_dir() else []:
        if folder.name.startswith((".", "_")):
            continue
        config = folder / MODEL_FILE
        if config.is_file():
            folders.append(config)
        elif any(folder.glob("*.py")) or any(folder.glob("*.y*ml")):
            raise ConfigError(folder, [f"(folder): a model folder needs its config as {MODEL_FILE}"])
    both = sorted({f.stem for f in files} & {c.parent.name for c in folders})
    if both:
        raise ConfigError(
            directory,
            [
                f"(directory): model '{name}' is both {name}.yaml and {name}/{MODEL_FILE}; keep one"
                for name in both
            ],
        )
    return files + folders


def load_models(directory: Path | None = None) -> list[ModelConfig]:
    """Every model of a deployment: each `<name>.yaml` and each `<name>/model.yaml` in `directory`.

    Default: $HEADRACE_MODELS_DIR, else the repo's models/ (the CDK app reads the same variable).
    """
    directory = models_directory(directory)
    files = model_files(directory)
    if not files:
        raise ConfigError(
            directory, [f"(directory): no <model>.yaml files or <model>/{MODEL_FILE} folders found"]
        )
    return [load_model_file(f) for f in files]


def models_document(models: list[ModelConfig]) -> str:
    """The validated configs as one JSON document, shipped inside each Lambda asset (no YAML parser there)."""
    return json.dumps({"models": [_document(m) for m in models]}, indent=1)


def _document(model: ModelConfig) -> dict[str, Any]:
    dumped = model.model_dump(mode="json", by_alias=True)
    # An untuned model's document (and so every function's asset) stays what it was before tuning existed.
    if model.trainer.tuning is None:
        del dumped["trainer"]["tuning"]
    return dumped


def parse_models_document(text: str) -> dict[str, ModelConfig]:
    raw = json.loads(text)
    return {m["name"]: parse_model(m, "models.json") for m in raw["models"]}
