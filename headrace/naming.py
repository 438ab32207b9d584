"""Names shared by the CDK app, the local plane, the CLI and the tests, so that none of them guesses.

Physical names of buckets and tables are left to CloudFormation (global uniqueness, safe replacement);
callers find them through the stack outputs named here.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

DEFAULT_STAGE = "dev"
STAGE_PATTERN = r"^[a-z][a-z0-9]{1,9}$"
# The dimension every custom metric carries: stages deployed to one account share the namespace, and an
# alarm of one stage must never select another stage's datapoints (CloudWatch matches the full set).
STAGE_DIMENSION = "Stage"

# Step Functions execution names: 1-80 characters of letters, digits, '-' and '_'.
EXECUTION_NAME_MAX = 80
# SageMaker CreateTrainingJob's TrainingJobName: 1-63 characters matching this pattern (botocore's model).
TRAINING_JOB_NAME_MAX = 63
TRAINING_JOB_NAME_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
# The parts of a training job name: <model[:24]>-<sha256[:12]>-<sha256(execution name)[:8]>.
_JOB_MODEL_CHARS = 24
_JOB_SHA_CHARS = 12
_JOB_EXECUTION_CHARS = 8
# CreateHyperParameterTuningJob's HyperParameterTuningJobName: 1-32 characters of the same pattern
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateHyperParameterTuningJob.html).
TUNING_JOB_NAME_MAX = 32
# The parts of a tuning job name: <model[:12]>-<sha256[:8]>-<sha256(execution name)[:8]> (at most 30).
_TUNING_MODEL_CHARS = 12
_TUNING_SHA_CHARS = 8
# SageMaker names a tuning job's training jobs `<tuning job>-<NNN>-<8 hex>` (e.g. `mytuning-001-0b3e0b46`).
_TRIAL_SUFFIX_GLOB = "-???-????????"


@dataclass(frozen=True)
class Names:
    stage: str = DEFAULT_STAGE

    def __post_init__(self) -> None:
        if not re.fullmatch(STAGE_PATTERN, self.stage):
            raise ValueError(f"stage '{self.stage}' must match {STAGE_PATTERN} (like dev, prod)")

    @property
    def prefix(self) -> str:
        return f"headrace-{self.stage}"

    # Stateful resources (bucket, table, key) apart from the stateless pipeline.
    @property
    def data_stack(self) -> str:
        return f"{self.prefix}-data"

    @property
    def pipeline_stack(self) -> str:
        return f"{self.prefix}-pipeline"

    @property
    def stacks(self) -> list[str]:
        """In deployment order."""
        return [self.data_stack, self.pipeline_stack]

    @property
    def ingest_function(self) -> str:
        return f"{self.prefix}-ingest"

    # The functions every model's training workflow shares.
    @property
    def prepare_function(self) -> str:
        return f"{self.prefix}-training-prepare"

    @property
    def evaluate_function(self) -> str:
        return f"{self.prefix}-training-evaluate"

    @property
    def register_function(self) -> str:
        return f"{self.prefix}-training-register"

    @property
    def run_failed_function(self) -> str:
        return f"{self.prefix}-training-run-failed"

    @property
    def tuning_result_function(self) -> str:
        """Made only when a model is tuned (trainer.tuning)."""
        return f"{self.prefix}-training-tuning-result"

    def training_state_machine(self, model: str) -> str:
        return f"{self.prefix}-{model}-training"

    def model_package_group(self, model: str) -> str:
        """The model's group in the SageMaker Model Registry: one version per registered training run."""
        return f"{self.prefix}-{model}"

    def endpoint(self, model: str) -> str:
        """The model's SageMaker endpoint; versions roll out behind this one name."""
        return f"{self.prefix}-{model}"

    def hosted_model(self, model: str, version: int, digest: str) -> str:
        """The SageMaker Model (and EndpointConfig) of one version: `<endpoint>-v<N>-<8 hex>`, where the hex
        is a digest of what the config asks for, so a changed rollout section gets a new config, not a stale
        one (SageMaker's limit: 63 characters)."""
        return f"{self.endpoint(model)[:44]}-v{version}-{digest[:8]}"

    def deploy_state_machine(self, model: str) -> str:
        return f"{self.prefix}-{model}-deploy"

    def endpoint_alarm(self, model: str, guard: str) -> str:
        """One of the endpoint's rollout guardrails (`5xx`, `latency`, `quality`)."""
        return f"{self.endpoint(model)}-{guard}"

    def model_alarm(self, model: str, kind: str) -> str:
        """An alarm about the model rather than its endpoint (`drift`, `live-quality`)."""
        return f"{self.prefix}-{model}-{kind}"

    def drift_state_machine(self, model: str) -> str:
        return f"{self.prefix}-{model}-drift"

    def drift_schedule(self, model: str) -> str:
        return f"{self.prefix}-{model}-drift-check"

    def quality_state_machine(self, model: str) -> str:
        return f"{self.prefix}-{model}-quality"

    def quality_schedule(self, model: str) -> str:
        return f"{self.prefix}-{model}-quality-check"

    def batch_state_machine(self, model: str) -> str:
        return f"{self.prefix}-{model}-batch"

    # The functions every model's batch scoring shares.
    @property
    def batch_resolve_function(self) -> str:
        return f"{self.prefix}-batch-resolve"

    @property
    def batch_record_function(self) -> str:
        return f"{self.prefix}-batch-record"

    # The functions every model's drift check shares, and the retrain function.
    @property
    def drift_window_function(self) -> str:
        return f"{self.prefix}-drift-window"

    @property
    def drift_partial_function(self) -> str:
        return f"{self.prefix}-drift-partial"

    @property
    def drift_finish_function(self) -> str:
        return f"{self.prefix}-drift-finish"

    # The functions every model's quality check (captured predictions joined with ground truth) shares.
    @property
    def quality_window_function(self) -> str:
        return f"{self.prefix}-quality-window"

    @property
    def quality_partial_function(self) -> str:
        return f"{self.prefix}-quality-partial"

    @property
    def quality_finish_function(self) -> str:
        return f"{self.prefix}-quality-finish"

    @property
    def retrain_function(self) -> str:
        return f"{self.prefix}-retrain"

    # The functions every model's deploy workflow shares.
    @property
    def deploy_plan_function(self) -> str:
        return f"{self.prefix}-deploy-plan"

    @property
    def deploy_verify_function(self) -> str:
        return f"{self.prefix}-deploy-verify"

    @property
    def deploy_failed_function(self) -> str:
        return f"{self.prefix}-deploy-failed"

    # The stage's operations: where alarms and the budget report, what people look at, who may call.
    @property
    def alerts_topic(self) -> str:
        return f"{self.prefix}-alerts"

    @property
    def budget(self) -> str:
        return f"{self.prefix}-monthly-cost"

    @property
    def audit_trail(self) -> str:
        return f"{self.prefix}-data-events"

    @property
    def endpoint_invoke_role(self) -> str:
        return f"{self.prefix}-endpoint-invoke"

    def dashboard(self, model: str) -> str:
        return f"{self.prefix}-{model}"

    @property
    def event_source(self) -> str:
        """`source` of the events Headrace itself puts on the default bus."""
        return "headrace"

    @property
    def metric_namespace(self) -> str:
        return "Headrace"

    @property
    def metric_dimensions(self) -> dict[str, str]:
        """The dimensions every custom metric of this stage carries, besides its own."""
        return {STAGE_DIMENSION: self.stage}


class Outputs:
    """CloudFormation output keys: what a caller (CLI, local plane, tests) reads instead of guessing names."""

    DATA_BUCKET = "DataBucketName"
    LEDGER_TABLE = "LedgerTableName"
    DATA_KEY_ARN = "DataKeyArn"
    INGEST_FUNCTION = "IngestFunctionName"

    @staticmethod
    def training_state_machine(model: str) -> str:
        return "TrainingStateMachine" + _pascal(model)

    @staticmethod
    def deploy_state_machine(model: str) -> str:
        return "DeployStateMachine" + _pascal(model)

    @staticmethod
    def endpoint(model: str) -> str:
        return "Endpoint" + _pascal(model)

    @staticmethod
    def drift_state_machine(model: str) -> str:
        return "DriftStateMachine" + _pascal(model)

    # The serving image this stage's stacks run the model's versions with, and its asset hash (the digest a
    # version's lineage records as serving_code_digest): what `headrace promote` registers a version with.
    @staticmethod
    def serving_image(model: str) -> str:
        return "ServingImage" + _pascal(model)

    @staticmethod
    def serving_image_digest(model: str) -> str:
        return "ServingImageDigest" + _pascal(model)

    @staticmethod
    def quality_state_machine(model: str) -> str:
        return "QualityStateMachine" + _pascal(model)

    @staticmethod
    def batch_state_machine(model: str) -> str:
        return "BatchStateMachine" + _pascal(model)

    RETRAIN_FUNCTION = "RetrainFunctionName"
    ALERTS_TOPIC = "AlertsTopicArn"
    AUDIT_TRAIL = "AuditTrailName"
    ENDPOINT_INVOKE_ROLE = "EndpointInvokeRoleArn"

    @staticmethod
    def dashboard(model: str) -> str:
        return "Dashboard" + _pascal(model)


def _pascal(model: str) -> str:
    return "".join(part.capitalize() for part in model.split("-"))


def execution_name(model: str, content_sha256: str, attempt: str = "") -> str:
    """Deterministic execution name for one dataset version: a replayed start is ExecutionAlreadyExists."""
    name = f"{model}-{content_sha256[:40]}" + (f"-{attempt}" if attempt else "")
    return name[:EXECUTION_NAME_MAX]


def transform_job_name(model: str, content_sha256: str, started: datetime) -> str:
    """A batch's SageMaker transform job: `<model>-batch-<sha256[:8]>-<yyyymmddHHMMSS>` (the
    execution's start, so a retried state names the same job), cut to CreateTransformJob's 63
    characters (botocore's model: TransformJobName, 1-63 of `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`)."""
    stamp = started.astimezone(UTC).strftime("%Y%m%d%H%M%S")
    suffix = f"-batch-{content_sha256[:8]}-{stamp}"
    return model[: TRAINING_JOB_NAME_MAX - len(suffix)].rstrip("-") + suffix


def transform_job_name_glob(model: str) -> str:
    """An IAM resource pattern matching `model`'s transform job names."""
    suffix_chars = len("-batch-") + 8 + 1 + 14
    return f"{model[: TRAINING_JOB_NAME_MAX - suffix_chars].rstrip('-')}-batch-*"


def _job_model_part(model: str) -> str:
    return model[:_JOB_MODEL_CHARS].rstrip("-")


def training_job_name(model: str, content_sha256: str, execution_name: str) -> str:
    """The SageMaker training job of one execution: `<model[:24]>-<sha256[:12]>-<8 hex of the execution>`.

    Derived from the execution name, so a retried state or a replayed Prepare names the same job (at most
    46 characters: well inside SageMaker's 63, and lowercase, as SageMaker writes it into the job's ARN).
    """
    execution = hashlib.sha256(execution_name.encode()).hexdigest()[:_JOB_EXECUTION_CHARS]
    return f"{_job_model_part(model)}-{content_sha256[:_JOB_SHA_CHARS]}-{execution}"


def training_job_name_glob(model: str) -> str:
    """An IAM resource pattern matching exactly the shape of `model`'s training job names."""
    return f"{_job_model_part(model)}-{'?' * _JOB_SHA_CHARS}-{'?' * _JOB_EXECUTION_CHARS}"


def _tuning_model_part(model: str) -> str:
    return model[:_TUNING_MODEL_CHARS].rstrip("-")


def tuning_job_name(model: str, content_sha256: str, execution_name: str) -> str:
    """The SageMaker hyperparameter tuning job of one execution: `<model[:12]>-<sha256[:8]>-<8 hex of the
    execution>`, derived like `training_job_name` so a retried state names the same job; at most 30
    characters, inside TUNING_JOB_NAME_MAX, and lowercase as SageMaker writes it into the job's ARN."""
    execution = hashlib.sha256(execution_name.encode()).hexdigest()[:_JOB_EXECUTION_CHARS]
    return f"{_tuning_model_part(model)}-{content_sha256[:_TUNING_SHA_CHARS]}-{execution}"


def tuning_job_name_glob(model: str) -> str:
    """An IAM resource pattern matching exactly the shape of `model`'s tuning job names."""
    return f"{_tuning_model_part(model)}-{'?' * _TUNING_SHA_CHARS}-{'?' * _JOB_EXECUTION_CHARS}"


def tuning_trial_name_glob(model: str) -> str:
    """An IAM resource pattern matching the training jobs (trials) `model`'s tuning jobs start."""
    return tuning_job_name_glob(model) + _TRIAL_SUFFIX_GLOB


def is_tuning_job_of(model: str, name: str) -> bool:
    """Whether `name` has the shape of one of `model`'s tuning job names (ListHyperParameterTuningJobs'
    NameContains matches anywhere in a name, so another model's job may contain this one's prefix)."""
    pattern = rf"{re.escape(_tuning_model_part(model))}-[0-9a-f]{{{_TUNING_SHA_CHARS}}}-[0-9a-f]{{8}}"
    return re.fullmatch(pattern, name) is not None
