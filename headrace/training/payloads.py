"""The training steps' inputs and outputs: what the state machine passes each Lambda function and keeps at
the JSON paths named below. The state machine's input is `{"model": ..., "dataset": <DatasetVersion>}`.

    $.run         RunInfo       Prepare's output
    $.tuning      (SageMaker)   a tuned model's DescribeHyperParameterTuningJob response, from
                                createHyperParameterTuningJob.sync
    $.training    (SageMaker)   DescribeTrainingJob's response, from createTrainingJob.sync; for a tuned
                                model TuningResult's output: the best trial's, plus `tuning`
    $.gate        GateResult    Evaluate's output
    $.registered  Registered    Register's output
    $.error       StepError     what a Catch caught
    $.failure     Failure       RunFailed's output

Pandas-free on purpose (see the package docstring): later steps read the dataset version through
`DatasetRef`, the few fields they need.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from headrace.ledger.datasets import DatasetSource
from headrace.steps import Execution, NonEmpty, Payload, StepError

SHA256 = r"^[0-9a-f]{64}$"


class DatasetRef(Payload):
    """The fields of ingest's DatasetVersion that the steps after Prepare use."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    model: NonEmpty
    sha256: Annotated[str, Field(pattern=SHA256)]
    bucket: NonEmpty
    key: NonEmpty
    version_id: str | None = None
    dataset_key: NonEmpty
    rows: int | None = None


class SplitRows(Payload):
    train: int
    validation: int
    test: int


class RunDataset(Payload):
    """One dataset version a run trains on: what lineage names (its content hash, and for labelled
    production rows the quality check's lineage.json: capture windows and label files)."""

    sha256: Annotated[str, Field(pattern=SHA256)]
    dataset_key: NonEmpty
    source: DatasetSource = "upload"
    rows: int
    lineage_uri: str | None = None


class RunInfo(Payload):
    """`$.run`: the training job's name and every S3 location it uses (layout.RunLayout). `datasets` lists
    what the run trains on, oldest first; `holdout` is the production dataset whose rows alone make the
    test split (None: the test split is drawn from all rows). `champion_uri` is the champion channel."""

    job_name: NonEmpty
    train_uri: NonEmpty
    validation_uri: NonEmpty
    test_uri: NonEmpty
    champion_uri: str | None = None
    # The version copied into the champion channel (None: none.json).
    champion_version: int | None = None
    datasets: list[RunDataset] = []
    holdout: RunDataset | None = None
    output_uri: NonEmpty
    checkpoint_uri: NonEmpty
    execution_arn: NonEmpty
    started_at: datetime
    rows: SplitRows
    # A tuned model's: its tuning job, and the newest Completed one of the model it warm-starts from (None:
    # it starts cold). Both None for a model that trains one configuration per run.
    tuning_job_name: str | None = None
    parent_tuning_job: str | None = None


class EvaluateRequest(Payload):
    model: NonEmpty
    dataset: DatasetRef
    run: RunInfo
    # $.training.ModelArtifacts.S3ModelArtifacts: s3://<bucket>/<model>/runs/<job>/output/<job>/output/model.tar.gz
    model_artifacts: NonEmpty


class HoldoutMetrics(Payload):
    """A model's metrics on a run's test split, and how many rows that split has."""

    metrics: dict[str, float | None]
    rows: int


class ChampionInfo(Payload):
    """The newest Approved version of the model's package group, against which a candidate is compared:
    its registered metrics, its artifact (InferenceSpecification's ModelDataUrl) and, when the trainer
    evaluated it on the run's own test split, `holdout` (evaluation.json's `champion` block)."""

    version: int
    arn: NonEmpty
    metrics: dict[str, float]
    model_data_url: str | None = None
    holdout: HoldoutMetrics | None = None


class GateResult(Payload):
    """`$.gate`. `reasons` says why a candidate failed (empty when it passed); `notes` says which checks
    could not apply (a first model has no champion to compare with)."""

    passed: bool
    reasons: list[str]
    notes: list[str]
    metric: NonEmpty
    candidate: dict[str, float | None]
    champion: ChampionInfo | None
    evaluation_uri: NonEmpty


class ImageInfo(Payload):
    """A container image, fixed in the state machine's definition by CDK: its ECR URI and its asset hash
    (the digest of the build context: the container code and the headrace package it was built from)."""

    uri: NonEmpty
    digest: NonEmpty


class RegisterRequest(Payload):
    model: NonEmpty
    dataset: DatasetRef
    run: RunInfo
    gate: GateResult
    model_artifacts: NonEmpty
    training_job_arn: NonEmpty
    image: ImageInfo
    # The inference image the version is registered with (containers/serve).
    serving_image: ImageInfo
    # A tuned model's `$.training.tuning` (headrace.training.tuning.summarize); None for an untuned one.
    tuning: dict[str, Any] | None = None


ApprovalStatus = Literal["Approved", "PendingManualApproval", "Rejected"]


class Registered(Payload):
    """`$.registered`. `created` is False when a replayed Register found the version it made before."""

    model_package_group: NonEmpty
    model_package_arn: NonEmpty
    version: int
    approval_status: ApprovalStatus
    created: bool


class FailedState(Payload):
    """The state a Catch handed to RunFailed: whatever the run had reached when a step failed. Every field is
    optional, because the failure may have come before Prepare wrote `run` (or from a malformed input)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    model: str | None = None
    dataset: dict[str, Any] | None = None
    run: dict[str, Any] | None = None
    training: dict[str, Any] | None = None
    gate: dict[str, Any] | None = None
    error: StepError | None = None


class RunFailedRequest(Payload):
    state: FailedState
    execution: Execution


FailedStep = Literal["Prepare", "Train", "Tune", "Evaluate", "Register", "Unknown"]


class Failure(Payload):
    """`$.failure`: the Fail state takes its cause from here."""

    error: str
    cause: str
    failed_step: FailedStep
    model: str | None
    job_name: str | None
