"""The demo's story on the local plane, one method per step. A step returns what it saw, in a line, and
raises when what should have happened did not: the end state is checked (an endpoint InService on the
version's config, a deployment the ledger records as rolled back), never taken from a status alone.

Every step drives the plane as a user or AWS would (plane.py): files into S3 (a table to score in batch
among them), InvokeEndpoint with an InferenceId, ground truth dropped for those ids, the drift schedule
fired through the plane's control port, the quality check started as `headrace quality` starts it.

The story after v1 serves is concept drift (issue 16): the features keep their distribution, the labels
follow a changed rule. The drift check sees nothing; the quality check, joining the captured predictions with
the ground truth that arrived for them, sees the AUC fall; its alarm retrains on those labelled production
rows, and v2 has to beat v1 on the recent holdout (both figures from the gate) before it rolls out.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from headrace.config import ModelConfig
from headrace.datagen import generate, ground_truth_jsonl, label_captured
from headrace.ledger import TrainingInput
from headrace.serving.rollout import version_of
from headrace.training.gate import Direction, direction
from headrace.training.payloads import GateResult
from headrace.waiting import wait_for

from .batch import BATCH_FILE_ROWS, batch_text, score_batch
from .plane import DemoPlane
from .record import (
    DatasetUse,
    DemoRecord,
    DriftCheckRecord,
    GroundTruthRecord,
    QualityCheckRecord,
    QuarantineProblem,
    RolloutTrace,
    VersionRecord,
)
from .traffic import SAMPLE_S, Sent, Traffic, send_lines

# Fixed seeds: the same story on every machine (the same data, so the same model and the same verdicts).
DATA_SEED: Final = 7
SERVING_SEED: Final = 11
BAD_FILE_SEED: Final = 3
CONCEPT_SEED: Final = 42
LABEL_SEED: Final = 5
PREDICTION_ROWS: Final = 600
# Traffic after the concept drift, all of it labelled later: enough for a recent holdout of some hundreds
# of rows (the test split of the production dataset) and for the retrained model to learn the new rule.
CONCEPT_ROWS: Final = 3_000
# 1: the strongest feature's effect on the label is reversed (headrace.datagen.LabelRule).
CONCEPT_DRIFT: Final = 1.0
# Rows per InvokeEndpoint call when scoring in bulk.
BATCH_ROWS: Final = 100
# How long a step may take before the demo calls it not happening (generous: a loaded 2-core machine).
TRAINING_TIMEOUT_S: Final = 300
DEPLOY_TIMEOUT_S: Final = 240
EVENT_TIMEOUT_S: Final = 60
CHECK_TIMEOUT_S: Final = 120
# Seconds of a rollout's trace kept from before its canary began.
LEAD_S: Final = 3.0


def auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Rank AUC (Mann-Whitney): the chance that a random positive row scores above a random negative one."""
    positive = np.asarray(labels) == 1
    ranks = pd.Series(list(scores)).rank().to_numpy()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        raise ValueError("AUC needs both classes among the rows")
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


class Story:
    def __init__(
        self,
        record: DemoRecord,
        model: ModelConfig,
        models_dir: Path,
        work_dir: Path,
        clock: Callable[[], float],
        say: Callable[[str], None],
    ) -> None:
        self.record, self.model, self.models_dir, self.work_dir = record, model, models_dir, work_dir
        self.clock, self.say = clock, say
        self._plane: DemoPlane | None = None
        self._traffic: Traffic | None = None
        self._invocations = 0  # InvokeEndpoint calls whose capture a drift check must see
        self._dataset_sha = ""
        self._training_arn = ""
        self._caller_rows: list[str] = []
        self._gate: GateResult | None = None
        self._concept = Sent()  # the calls after the concept drift, under their InferenceIds
        self._production_key = ""  # where the quality check wrote the labelled production rows

    def steps(self) -> list[tuple[str, Callable[[], str]]]:
        name = self.model.name
        return [
            ("Start the local plane (moto + cdk synth)", self.start_plane),
            (f"Drop {self.record.rows:,} rows of {name} data in S3", self.drop_data),
            ("Validation: schema, content-hash version", self.validation),
            ("Training run started, exactly once", self.training_started),
            ("Training → evaluation gate", self.evaluation_gate),
            ("Registry: v1 registered", self.registry),
            ("Approval → the deploy workflow", self.approval),
            ("Endpoint serving v1", self.endpoint_serving),
            (f"Predictions: {PREDICTION_ROWS} rows via boto3", self.predictions),
            (f"Batch: {BATCH_FILE_ROWS:,} rows by a transform job", self.batch_scoring),
            ("A bad file quarantined, with reasons", self.bad_file),
            (f"Concept drift: {CONCEPT_ROWS:,} rows, InferenceIds", self.concept_traffic),
            ("Ground truth for them dropped in S3", self.ground_truth),
            ("Drift check: stable (features unchanged)", self.drift_check),
            (f"Quality check: live {self.model.gate.metric} fell", self.quality_check),
            ("Live-quality alarm → ALARM", self.quality_alarm),
            ("Retraining on production labels, once", self.retraining_started),
            ("v2 beats v1 on the recent holdout", self.retrained),
            ("Canary rollout of v2, a client calling", self.canary_v2),
            ("Broken v3 rolled back by the 5xx alarm", self.broken_v3),
        ]

    def close(self) -> None:
        if self._traffic is not None:
            self._traffic.stop()
            self._traffic = None

    @property
    def plane(self) -> DemoPlane:
        if self._plane is None:
            raise RuntimeError("the local plane is not up")
        return self._plane

    # --- data → v1 ----------------------------------------------------------------------------------------

    def start_plane(self) -> str:
        self._plane = DemoPlane.start(self.work_dir, self.models_dir, self.model)
        self.record.endpoint = self.plane.plane.endpoint
        return f"{self.record.endpoint}, stacks {', '.join(self.plane.names.stacks)} from cdk synth"

    def drop_data(self) -> str:
        body = generate(self.model, self.record.rows, seed=DATA_SEED).to_csv(index=False).encode()
        key = f"{self.plane.info.incoming_prefix}demo.csv"
        self.plane.put(key, body)
        self._dataset_sha = hashlib.sha256(body).hexdigest()
        self.record.marks["dropped"] = self.clock()
        return f"{key} in the data bucket ({len(body) / 1e6:.1f} MB)"

    def validation(self) -> str:
        rows = wait_for(
            lambda: self.plane.dataset_rows(self._dataset_sha),
            "the dataset version in the ledger",
            timeout_s=EVENT_TIMEOUT_S,
        )
        columns = len(self.model.data.columns)
        return f"{rows:,} rows, {columns} columns valid; dataset version {self._dataset_sha[:12]}"

    def training_started(self) -> str:
        self._training_arn = self.plane.training_execution_arn(self._dataset_sha)
        executions = wait_for(
            lambda: self.plane.training_executions() or None, "the training run", timeout_s=EVENT_TIMEOUT_S
        )
        if [e["executionArn"] for e in executions] != [self._training_arn]:
            raise RuntimeError(
                f"expected one run, {self._training_arn}; found {[e['name'] for e in executions]}"
            )
        seconds = self.clock() - self.record.marks["dropped"]
        return f"{_short(executions[0]['name'])}, {seconds:.1f}s after the drop"

    def evaluation_gate(self) -> str:
        _, self._gate = self._passed_gate(self._training_arn, "the training run")
        return _gate_text(self._gate, self.model)

    def registry(self) -> str:
        registered = self.plane.registered(self._training_arn)
        if (registered.version, registered.approval_status) != (1, "Approved"):
            raise RuntimeError(
                f"expected v1 Approved, got v{registered.version} {registered.approval_status}"
            )
        gate = self._gate
        self.record.versions.append(
            VersionRecord(
                version=1,
                origin=f"data drop {self._dataset_sha[:8]}",
                metrics=gate.candidate if gate else {},
                gate="passed" if gate else "",
                gate_detail=_gate_text(gate, self.model) if gate else "",
                approval=registered.approval_status,
            )
        )
        return (
            f"v1 in {registered.model_package_group}: {registered.approval_status} "
            f"(gate.approval: {self.model.gate.approval})"
        )

    def approval(self) -> str:
        executions = wait_for(
            lambda: self.plane.deploy_executions() or None,
            "the deploy workflow to start on the Approved event",
            timeout_s=EVENT_TIMEOUT_S,
        )
        return f"the Approved event started deploy execution {_short(executions[0]['name'])}"

    def endpoint_serving(self) -> str:
        execution = self.plane.deployment_ended(1, DEPLOY_TIMEOUT_S)
        if execution["status"] != "SUCCEEDED":
            raise RuntimeError(f"the deployment of v1 ended {execution['status']}: {execution.get('cause')}")
        endpoint = self.plane.endpoint()
        if endpoint["EndpointStatus"] != "InService" or version_of(endpoint["EndpointConfigName"]) != 1:
            raise RuntimeError(
                f"endpoint is {endpoint['EndpointStatus']} on {endpoint['EndpointConfigName']}, not v1"
            )
        now = self.clock()
        self.record.version(1).serving_from = now
        self.record.marks["v1 serving"] = now
        return f"{self.plane.info.endpoint_name} InService on {endpoint['EndpointConfigName']}"

    def predictions(self) -> str:
        frame = generate(self.model, PREDICTION_ROWS, seed=SERVING_SEED)
        lines = self._feature_lines(frame)
        scores = _scores(self._send(lines))
        found = auc(frame[self.model.data.target].astype(int).tolist(), scores)
        floor = self.model.gate.thresholds.get("auc", 0.5)
        if found < floor:
            raise RuntimeError(f"the served predictions have AUC {found:.3f} on labelled rows, below {floor}")
        self._caller_rows = lines[:50]
        first = ", ".join(f"{s:.2f}" for s in scores[:3])
        calls = len(lines) // BATCH_ROWS
        return f"{calls} InvokeEndpoint calls; AUC {found:.3f} against their labels; first: {first}…"

    def batch_scoring(self) -> str:
        batch = score_batch(self.plane, self.clock, self.say, lambda lines: _scores(self._send(lines)))
        self.record.batches.append(batch)
        return batch_text(batch)

    def bad_file(self) -> str:
        frame = generate(self.model, 800, seed=BAD_FILE_SEED)
        frame.loc[5:40, "monthly_charges"] = -12.5
        frame.loc[60:70, "region"] = "atlantis"
        key = f"{self.plane.info.incoming_prefix}broken-export.csv"
        self.plane.put(key, frame.drop(columns=["support_calls"]).to_csv(index=False).encode())
        doc = wait_for(
            lambda: self.plane.quarantine_reason(key),
            "the bad file's quarantine reason",
            timeout_s=EVENT_TIMEOUT_S,
        )
        self.record.quarantined = [QuarantineProblem.model_validate(p) for p in doc["problems"]]
        rules = ", ".join(sorted({p.rule for p in self.record.quarantined}))
        return f"{len(doc['problems'])} problems ({rules}); the original kept, no training run"

    # --- concept drift → v2 -------------------------------------------------------------------------------

    def concept_traffic(self) -> str:
        frame = generate(self.model, CONCEPT_ROWS, seed=CONCEPT_SEED, concept_drift=CONCEPT_DRIFT)
        self._concept = self._send(self._feature_lines(frame))
        self.record.marks["concept drift"] = self.clock()
        return (
            f"{len(self._concept.inference_ids)} calls of rows drawn like the training data, labels by a "
            f"changed rule (concept_drift={CONCEPT_DRIFT:g}); each call's InferenceId kept"
        )

    def ground_truth(self) -> str:
        """The outcomes of the drifted calls become known: labels for their captured rows, keyed by each
        call's InferenceId, dropped under ground-truth/incoming/ and accepted by ingest."""
        self._wait_captured()
        ids = set(self._concept.inference_ids)
        lines = [line for line in self.plane.capture_lines() if _inference_id(line) in ids]
        if len(lines) != len(ids):
            raise RuntimeError(f"{len(lines)} of the {len(ids)} drifted calls are in the capture")
        labels = label_captured(self.model, lines, concept_drift=CONCEPT_DRIFT, seed=LABEL_SEED)
        if len(labels.keys) != CONCEPT_ROWS:
            raise RuntimeError(
                f"the capture holds {len(labels.keys)} rows of the drifted calls, not {CONCEPT_ROWS}"
            )
        key = f"{self.plane.ground_truth_prefix}demo-outcomes.jsonl"
        self.plane.put(key, ground_truth_jsonl(labels).encode())
        item = wait_for(
            lambda: self.plane.label_file(key), "ingest to accept the ground truth", timeout_s=EVENT_TIMEOUT_S
        )
        if (item.labels, item.inferences) != (len(labels.keys), len(ids)):
            raise RuntimeError(
                f"ingest accepted {item.labels} labels of {item.inferences} inferences, "
                f"not {len(labels.keys)} of {len(ids)}"
            )
        self.record.ground_truth.append(
            GroundTruthRecord(
                source_key=key, accepted_key=item.accepted_key, labels=item.labels, inferences=item.inferences
            )
        )
        return (
            f"{item.labels:,} labels for {item.inferences} InferenceIds (SageMaker's ground-truth JSON "
            f"lines); accepted as {item.accepted_key.rsplit('/', 1)[-1]}"
        )

    def drift_check(self) -> str:
        check = self._drift_check("after the concept drift")
        if check.status != "stable":
            raise RuntimeError(
                f"traffic whose features were drawn like the training data was judged {check.status}"
            )
        return _check_text(check)

    def quality_check(self) -> str:
        self.say("quality check running: captured predictions joined with their ground truth")
        outcome, result = self.plane.quality_check(CHECK_TIMEOUT_S)
        if not self.plane.quality_recorded(outcome.check_id):
            raise RuntimeError(f"the ledger has no record of quality check {outcome.check_id}")
        bounds = result.metrics.get("error_bounds") or {}
        check = QualityCheckRecord(
            label="after the concept drift",
            check_id=outcome.check_id,
            at=self.clock(),
            status=result.status,
            labelled_rows=result.labelled_rows,
            unknown_labels=result.unknown_labels,
            metric=result.metric,
            value=result.value,
            error_bound=bounds.get(result.metric),
            threshold=result.threshold,
            baseline=result.baseline,
            reasons=result.reasons,
            production_dataset_key=result.production_dataset_key,
            report_uri=outcome.report_uri,
        )
        self.record.quality.append(check)
        if result.status != "breach":
            raise RuntimeError(
                f"the quality check found {result.status}, not a breach: {'; '.join(result.reasons)}"
            )
        if result.labelled_rows != CONCEPT_ROWS:
            raise RuntimeError(
                f"the check joined {result.labelled_rows} labelled rows, not the {CONCEPT_ROWS} sent"
            )
        if result.production_dataset_key is None:
            raise RuntimeError("the check wrote no labelled production rows")
        self._production_key = result.production_dataset_key
        production = wait_for(
            lambda: next((d for d in self.plane.datasets() if d.key == self._production_key), None),
            "the labelled production rows as a dataset version",
            timeout_s=EVENT_TIMEOUT_S,
        )
        if (production.source, production.execution_arn) != ("production", None):
            raise RuntimeError(
                f"{self._production_key} was recorded as {production.source} data with run "
                f"{production.execution_arn}, not production data that starts no run"
            )
        return f"{_quality_text(check)}; {production.rows:,} labelled rows → dataset {production.sha256[:12]}"

    def quality_alarm(self) -> str:
        name = self.plane.names.model_alarm(self.model.name, "live-quality")

        def in_alarm() -> dict[str, Any] | None:
            alarm = self.plane.alarm(name)
            return alarm if alarm and alarm["StateValue"] == "ALARM" else None

        alarm = wait_for(in_alarm, f"alarm {name} to enter ALARM", timeout_s=EVENT_TIMEOUT_S)
        self.record.marks["quality alarm"] = self.clock()
        return f"{name} in ALARM: {alarm.get('MetricName') or 'its metric'} ≥ {alarm.get('Threshold', 0):g}"

    def retraining_started(self) -> str:
        decisions = wait_for(
            lambda: [d for d in self.plane.retrain_decisions() if d.decision == "started"] or None,
            "a retraining decision",
            timeout_s=EVENT_TIMEOUT_S,
        )
        if len(decisions) != 1:
            raise RuntimeError(f"{len(decisions)} retraining runs started, expected exactly one")
        first_run = self._training_arn
        self._training_arn = str(decisions[0].execution_arn)
        if decisions[0].alarm != self.plane.names.model_alarm(self.model.name, "live-quality"):
            raise RuntimeError(
                f"the retraining was started by {decisions[0].alarm}, not the live-quality alarm"
            )
        retrains = [e for e in self.plane.training_executions() if e["executionArn"] != first_run]
        if [e["executionArn"] for e in retrains] != [self._training_arn]:
            raise RuntimeError(f"expected one retraining run, found {[e['name'] for e in retrains]}")
        started = TrainingInput.model_validate_json(self.plane.execution_input(self._training_arn))
        production = [d for d in started.extra if d.source == "production" and d.key == self._production_key]
        if not production:
            accepted = next((d for d in self.plane.datasets() if d.key == self._production_key), None)
            when = f"accepted {accepted.received_at}" if accepted else "never accepted"
            raise RuntimeError(
                f"the retraining run does not read the labelled production rows {self._production_key} "
                f"({when}; the retraining was decided at {decisions[0].decided_at:%Y-%m-%dT%H:%M:%S.%f}): "
                f"it reads {', '.join(d.key for d in [started.dataset, *started.extra])}"
            )
        # From here on a client calls the endpoint, so v2's canary is watched from before it begins.
        self._traffic = self._calling(version=2)
        cooldown = self.model.monitoring.cooldown_minutes
        return (
            f"{_short(retrains[0]['name'])}: the newest upload + {production[0].rows:,} labelled production "
            f"rows (guards: {cooldown} min cooldown, one per alarm episode)"
        )

    def retrained(self) -> str:
        _, gate = self._passed_gate(self._training_arn, "the retraining run")
        registered = self.plane.registered(self._training_arn)
        if (registered.version, registered.approval_status) != (2, "Approved"):
            raise RuntimeError(
                f"expected v2 Approved, got v{registered.version} {registered.approval_status}"
            )
        run, _ = self.plane.run_info(self._training_arn)
        if run.holdout is None or run.holdout.source != "production":
            raise RuntimeError("the retraining run's test split is not drawn from labelled production rows")
        metric, champion = gate.metric, gate.champion
        holdout = champion.holdout if champion is not None else None
        if champion is None or holdout is None:
            raise RuntimeError("the gate did not score the champion on the recent holdout")
        ours, theirs = gate.candidate.get(metric), holdout.metrics.get(metric)
        if ours is None or theirs is None or not _better(metric, ours, theirs):
            raise RuntimeError(
                f"v2's {metric} {ours} does not beat v{champion.version}'s {theirs} on the holdout"
            )
        self.record.version(champion.version).recent = theirs
        self.record.versions.append(
            VersionRecord(
                version=2,
                origin="retrained on production labels",
                metrics=gate.candidate,
                gate=f"passed vs v{champion.version}",
                gate_detail="; ".join([_gate_text(gate, self.model), *gate.notes]),
                approval=registered.approval_status,
                note=f"metrics on the {holdout.rows}-row recent holdout of labelled production rows",
                datasets=[
                    DatasetUse(sha256=d.sha256, source=d.source, rows=d.rows, lineage_uri=d.lineage_uri)
                    for d in run.datasets
                ],
                holdout_rows=holdout.rows,
                recent=ours,
            )
        )
        return (
            f"{metric} {ours:.3f} vs v{champion.version}'s {theirs:.3f} on the {holdout.rows}-row recent "
            f"holdout; v2 {registered.approval_status}"
        )

    def canary_v2(self) -> str:
        if self._traffic is None:
            raise RuntimeError("no client is calling the endpoint")
        traffic = self._traffic
        execution = self.plane.deployment_ended(
            2, DEPLOY_TIMEOUT_S, on_poll=lambda: self._say_traffic(traffic)
        )
        ended = self.clock()
        self.close()
        if execution["status"] != "SUCCEEDED":
            raise RuntimeError(f"the rollout of v2 ended {execution['status']}: {execution.get('cause')}")
        serving = self.plane.endpoint()["EndpointConfigName"]
        if version_of(serving) != 2:
            raise RuntimeError(f"the endpoint serves {serving}, not v2")
        if traffic.failures:
            raise RuntimeError(
                f"{len(traffic.failures)} calls failed during v2's rollout: {traffic.failures[0][1]}"
            )
        canary_at = traffic.canary_began()
        partial = [s for _, s in traffic.shares if 0 < s < 1]
        full_at = next((t for t, s in traffic.shares if s >= 1), None)
        if canary_at is None or not partial or full_at is None:
            raise RuntimeError("no canary step was seen: traffic did not move to v2 in steps")
        self.record.rollouts.append(_trace(traffic, "serving", canary_at, ended))
        self.record.version(1).serving_until = full_at
        v2 = self.record.version(2)
        v2.canary_at, v2.serving_from = canary_at, full_at
        self.record.marks["v2 serving"] = full_at
        return (
            f"{max(partial):.0%} of traffic for {full_at - canary_at:.1f}s, then all of it; "
            f"{len(traffic.answers)} calls, none failed"
        )

    # --- the broken v3 ------------------------------------------------------------------------------------

    def broken_v3(self) -> str:
        serving_before = self.plane.endpoint()["EndpointConfigName"]
        traffic = self._traffic = self._calling(version=3)
        wait_for(lambda: len(traffic.answers) >= 10 or None, "the client's first answers", timeout_s=30)
        self.plane.register_broken_copy(of_version=2)
        self.record.versions.append(
            VersionRecord(
                version=3,
                origin="v2 + fault 5xx",
                gate="none (by hand)",
                gate_detail="registered Approved by hand: no training run, no gate",
                approval="Approved",
                note='v2\'s model.tar.gz with "fault": "5xx" in features.json (the serving fault hook)',
            )
        )
        execution = self.plane.deployment_ended(
            3, DEPLOY_TIMEOUT_S, on_poll=lambda: self._say_traffic(traffic)
        )
        ended = self.clock()
        self.close()
        return self._judge_rollback(execution, traffic, serving_before, ended)

    def _judge_rollback(
        self, execution: dict[str, Any], traffic: Traffic, serving_before: str, ended: float
    ) -> str:
        alarm = self.plane.names.endpoint_alarm(self.model.name, "5xx")
        cause = str(execution.get("cause", ""))
        if execution["status"] != "FAILED":
            raise RuntimeError(f"the deployment of v3 ended {execution['status']}, not FAILED")
        if "v3 was rolled back" not in cause or alarm not in cause:
            raise RuntimeError(
                f"the deployment's cause does not name the rollback and {alarm}: {cause[:200]}"
            )
        # The execution fails as DeploymentFailed (its Fail state); which failure it was, the ledger says.
        recorded = self.plane.deployment_record(3)
        if recorded is None or (recorded.status, recorded.error) != ("rolled_back", "DeploymentRolledBack"):
            found = f"{recorded.status} ({recorded.error})" if recorded else "nothing"
            raise RuntimeError(f"the ledger records {found} for v3, not rolled_back (DeploymentRolledBack)")
        serving = self.plane.endpoint()["EndpointConfigName"]
        if serving != serving_before:
            raise RuntimeError(f"the endpoint serves {serving} after the rollback, not {serving_before}")
        canary_at = traffic.canary_began()
        rolled_back_at = traffic.returned_to_zero(canary_at) if canary_at is not None else None
        if canary_at is None or rolled_back_at is None:
            raise RuntimeError("v3 never got traffic, so its rollback was not seen")
        failures = traffic.failures
        if not failures:
            raise RuntimeError("no call failed: the canary never reached the broken version")
        # Outside the canary: before the new fleet had traffic (a sample's resolution allowed), or after the
        # deploy workflow had ended.
        outside = [t for t, _ in failures if t > ended or t < canary_at - SAMPLE_S]
        if outside:
            raise RuntimeError(f"{len(outside)} calls failed outside v3's canary")
        not_5xx = [e for _, e in failures if "(500)" not in e]
        if not_5xx:
            raise RuntimeError(f"a call failed with something other than the 5xx: {not_5xx[0]}")
        self.record.rollouts.append(_trace(traffic, "rolled_back", canary_at, ended))
        v3 = self.record.version(3)
        v3.canary_at, v3.rolled_back_at = canary_at, rolled_back_at
        self.record.marks["v3 rolled back"] = rolled_back_at
        peak = max(s for t, s in traffic.shares if t < rolled_back_at)
        return (
            f"FAILED, {recorded.status} ({recorded.error}) {rolled_back_at - canary_at:.1f}s after "
            f"its canary began, at {peak:.0%} of traffic; "
            f"still on v2; {len(failures)} of {len(traffic.answers)} calls failed, all during the canary"
        )

    # --- helpers ------------------------------------------------------------------------------------------

    def _passed_gate(self, training_arn: str, what: str) -> tuple[dict[str, Any], GateResult]:
        """The training run, once it has ended, and its gate, which must have passed."""
        execution = self.plane.ended(training_arn, what, TRAINING_TIMEOUT_S)
        if execution["status"] != "SUCCEEDED":
            raise RuntimeError(f"{what} ended {execution['status']}: {execution.get('cause', '')}")
        gate = GateResult.model_validate(json.loads(execution["output"])["gate"])
        if not gate.passed:
            raise RuntimeError(f"the gate rejected {what}'s model: {'; '.join(gate.reasons)}")
        return execution, gate

    def _calling(self, version: int) -> Traffic:
        sagemaker = self.plane.client("sagemaker")
        return Traffic(
            self.plane.endpoint_client(), sagemaker, self._caller_rows, version, self.clock
        ).start()

    def _say_traffic(self, traffic: Traffic) -> None:
        self.say(
            f"v{traffic.version} has {traffic.share:.0%} of traffic; "
            f"{len(traffic.answers)} calls, {len(traffic.failures)} failed"
        )

    def _feature_lines(self, frame: pd.DataFrame) -> list[str]:
        features = [c.name for c in self.model.data.features]
        return frame[features].to_csv(index=False, header=False).splitlines()

    def _send(self, lines: list[str]) -> Sent:
        """`lines` sent BATCH_ROWS to an InvokeEndpoint call, each call under its own InferenceId."""
        sent = send_lines(
            self.plane.endpoint_client(),
            lines,
            BATCH_ROWS,
            progress=lambda done: self.say(f"{done:,} of {len(lines):,} rows scored"),
        )
        self._invocations += len(sent.inference_ids)
        return sent

    def _wait_captured(self) -> None:
        def captured() -> int | None:
            # Every call so far in the capture files: a check then sees all of its window's traffic.
            calls = self.plane.captured_calls()
            self.say(f"{calls} of {self._invocations} calls captured")
            return calls if calls >= self._invocations else None

        wait_for(captured, "the calls' capture in S3", timeout_s=EVENT_TIMEOUT_S, interval_s=0.3)

    def _drift_check(self, label: str) -> DriftCheckRecord:
        self._wait_captured()
        self.say("drift check running")
        outcome, result = self.plane.drift_check(EVENT_TIMEOUT_S)
        check = DriftCheckRecord(
            label=label,
            check_id=outcome.check_id,
            at=self.clock(),
            status=result.status,
            rows=result.rows_current,
            drifted_features=result.drifted_features,
            psi={f.name: f.psi for f in result.features},
            psi_threshold=result.psi_threshold,
        )
        self.record.checks.append(check)
        return check


def _scores(sent: Sent) -> list[float]:
    """One probability a row, in the order sent."""
    scores: list[float] = []
    for answered in sent.scores:
        for score in answered:
            if isinstance(score, list):
                raise RuntimeError("the endpoint answered per-class scores, not one probability a row")
            scores.append(float(score))
    return scores


def _inference_id(line: bytes) -> str | None:
    """A capture record's InferenceId (`eventMetadata.inferenceId`, as SageMaker's data capture writes it)."""
    try:
        found = json.loads(line)["eventMetadata"].get("inferenceId")
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return str(found) if found is not None else None


def _better(metric: str, ours: float, theirs: float) -> bool:
    return ours > theirs if direction(metric) is Direction.HIGHER else ours < theirs


def _trace(traffic: Traffic, outcome: str, canary_at: float, ended: float) -> RolloutTrace:
    since = canary_at - LEAD_S
    return RolloutTrace.model_validate(
        {
            "version": traffic.version,
            "outcome": outcome,
            "started_at": canary_at,
            "ended_at": ended,
            "shares": [(t, s) for t, s in traffic.shares if since <= t <= ended + 1.0],
            "calls": len([t for t, _ in traffic.answers if since <= t <= ended]),
            "failed_at": [t for t, _ in traffic.failures],
            "errors": [e for _, e in traffic.failures[:3]],
        }
    )


def _short(name: str) -> str:
    """A long generated name (an execution's): its head and its distinguishing tail."""
    return name if len(name) <= 36 else f"{name[:18]}…{name[-16:]}"


def _gate_text(gate: GateResult, model: ModelConfig) -> str:
    metric = gate.metric
    value = gate.candidate.get(metric)
    shown = f"{metric} {value:.3f}" if value is not None else f"no {metric}"
    floor = model.gate.thresholds.get(metric)
    parts = [f"{shown} ≥ {floor}" if floor is not None else shown]
    if gate.champion is not None and gate.champion.holdout is not None:
        champion = gate.champion.holdout.metrics.get(metric)
        if champion is not None:
            parts.append(
                f"vs champion v{gate.champion.version} {champion:.3f} on the same "
                f"{gate.champion.holdout.rows}-row recent holdout"
            )
    elif gate.champion is not None:
        champion = gate.champion.metrics.get(metric)
        if champion is not None:
            parts.append(f"vs champion v{gate.champion.version} {champion:.3f}")
    else:
        parts.append("no champion yet")
    return ("passed: " if gate.passed else "rejected: ") + ", ".join(parts)


def _check_text(check: DriftCheckRecord) -> str:
    scored = {name: psi for name, psi in check.psi.items() if psi is not None}
    top = max(scored, key=lambda name: scored[name]) if scored else None
    worst = f"; highest PSI {top} {scored[top]:.2f}" if top else ""
    drifted = (
        f"drifted: {', '.join(check.drifted_features)}" if check.drifted_features else "no feature drifted"
    )
    return f"{check.rows:,} rows, {drifted}{worst} (threshold {check.psi_threshold})"


def _quality_text(check: QualityCheckRecord) -> str:
    bound = f" ±{check.error_bound:.1g}" if check.error_bound else ""
    live = f"{check.value:.3f}{bound}" if check.value is not None else "none"
    own = f"{check.baseline:.3f}" if check.baseline is not None else "unknown"
    return (
        f"{check.status}: live {check.metric} {live} on {check.labelled_rows:,} labelled rows vs {own} on "
        f"v1's own test split (threshold {check.threshold:g})"
        if check.threshold is not None
        else f"{check.status}: live {check.metric} {live} on {check.labelled_rows:,} labelled rows vs {own}"
    )
