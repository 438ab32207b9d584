"""What the demo saw, kept as data: the live display, the summary and the HTML report all read this, and it
is written beside the report as record.json. Times are seconds since the demo started."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

StepStatus = Literal["pending", "running", "done", "failed"]


class StepRecord(BaseModel):
    title: str
    status: StepStatus = "pending"
    detail: str = ""
    started_at: float | None = None
    seconds: float = 0.0


class DatasetUse(BaseModel):
    """A dataset version a training run read (RunInfo.datasets): an upload, or labelled production rows
    with the lineage of the capture windows and label files they came from."""

    sha256: str
    source: str
    rows: int
    lineage_uri: str | None = None


class VersionRecord(BaseModel):
    """One registry version and what became of it."""

    version: int
    origin: str
    metrics: dict[str, float | None] = {}
    # The gate's outcome in a word or two, and in full (thresholds, champion) for the report.
    gate: str = ""
    gate_detail: str = ""
    approval: str = ""
    note: str = ""
    # What served when: the canary began, the version took all traffic, it stopped serving (replaced or
    # rolled back). None: it did not happen.
    canary_at: float | None = None
    serving_from: float | None = None
    serving_until: float | None = None
    rolled_back_at: float | None = None
    # A retrained version: what it trained on, and the recent holdout the gate compared it with its
    # champion on (GateResult.champion.holdout: both figures on the same rows).
    datasets: list[DatasetUse] = []
    holdout_rows: int | None = None
    # The gate's metric on the recent holdout of labelled production rows (both versions' figures come
    # from the retraining run's gate), and for the champion its figure there.
    recent: float | None = None


class DriftCheckRecord(BaseModel):
    label: str
    check_id: str
    at: float
    status: str
    rows: int
    drifted_features: list[str] = []
    psi: dict[str, float | None] = {}
    psi_threshold: float


class QualityCheckRecord(BaseModel):
    """A live-quality check: the served version's predictions joined with the ground truth that arrived."""

    label: str
    check_id: str
    at: float
    status: str
    labelled_rows: int
    unknown_labels: int
    metric: str
    value: float | None
    # The approximate metric's exact bound on |approx - exact| (AUC from score histograms).
    error_bound: float | None = None
    threshold: float | None
    # The serving version's own test metric (its evaluation.json).
    baseline: float | None
    reasons: list[str] = []
    production_dataset_key: str | None = None
    report_uri: str | None = None


class GroundTruthRecord(BaseModel):
    """A label file dropped under `<model>/ground-truth/incoming/` and what ingest accepted of it."""

    source_key: str
    accepted_key: str
    labels: int
    inferences: int


class RolloutTrace(BaseModel):
    """A rollout watched from outside: the new fleet's share of traffic (DescribeEndpoint) and a client's
    calls meanwhile."""

    version: int
    outcome: Literal["serving", "rolled_back"]
    started_at: float
    ended_at: float
    # (time, the new fleet's share 0..1), sampled while the deploy workflow ran.
    shares: list[tuple[float, float]] = []
    calls: int = 0
    # Times of the calls that failed, and the first few errors as the client saw them.
    failed_at: list[float] = []
    errors: list[str] = []


class BatchRecord(BaseModel):
    """A batch file scored by the batch workflow (a transform job with the serving version's Model), as the
    demo saw it: from the drop to the ledger's Completed, and a sample of its rows sent to the endpoint."""

    job_name: str
    input_key: str
    rows: int
    version: int | None
    output_uri: str
    output_objects: int
    dropped_at: float
    ended_at: float
    # Rows whose batch score was compared with InvokeEndpoint's for the same row, and the largest difference.
    sampled: int
    max_difference: float
    # The drift check over the batch's inputs (headrace.batch.monitor).
    drift_status: str | None = None

    @property
    def seconds(self) -> float:
        return self.ended_at - self.dropped_at


class QuarantineProblem(BaseModel):
    rule: str
    column: str | None = None
    message: str


class DemoRecord(BaseModel):
    model: str
    # The metric the gate judges (gate.metric): shown first, and alone where space is short.
    metric: str = "auc"
    rows: int
    started: datetime
    models_dir: str
    settings: str
    endpoint: str | None = None
    steps: list[StepRecord] = []
    versions: list[VersionRecord] = []
    checks: list[DriftCheckRecord] = []
    quality: list[QualityCheckRecord] = []
    ground_truth: list[GroundTruthRecord] = []
    rollouts: list[RolloutTrace] = []
    batches: list[BatchRecord] = []
    quarantined: list[QuarantineProblem] = []
    # Milestones by name ("dropped", "v1 serving", ...), for the summary's "time to" rows.
    marks: dict[str, float] = {}
    seconds: float = 0.0
    failed_step: str | None = None

    def version(self, number: int) -> VersionRecord:
        for version in self.versions:
            if version.version == number:
                return version
        raise KeyError(f"v{number} is not in the demo's record")
