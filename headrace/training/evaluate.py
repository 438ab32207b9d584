"""Evaluate: the candidate's evaluation.json (inside the training job's model.tar.gz) against the gate and
the current champion (with its figures on the run's test split when the trainer scored it, and it is still
the version Prepare copied). A copy of the evaluation goes beside the run (the registry's ModelQuality
statistics point at it), and the run record says "evaluated" or, with the reasons, "rejected"."""

from __future__ import annotations

import logging

from headrace.config import ModelConfig
from headrace.ledger import RunItem
from headrace.naming import Names
from headrace.training.evaluation import ArtifactError, evaluation_from_archive
from headrace.training.gate import judge
from headrace.training.layout import RunLayout, split_s3_uri
from headrace.training.payloads import EvaluateRequest, GateResult
from headrace.training.ports import TrainingPorts

log = logging.getLogger("headrace.training")

PASSED_METRIC = "CandidatesPassed"
REJECTED_METRIC = "CandidatesRejected"


def evaluate(
    request: EvaluateRequest,
    model: ModelConfig,
    ports: TrainingPorts,
    *,
    names: Names,
    bucket: str,
) -> GateResult:
    layout = RunLayout(bucket, model.name, request.run.job_name)
    artifact_bucket, artifact_key = split_s3_uri(request.model_artifacts)
    if artifact_bucket != bucket or not artifact_key.startswith(layout.prefix):
        raise ArtifactError(
            f"the model artifact {request.model_artifacts} is not under the run's folder "
            f"{layout.uri(layout.prefix)}"
        )
    evaluation, document = evaluation_from_archive(
        ports.store.read(artifact_bucket, artifact_key), request.model_artifacts
    )
    ports.store.put(bucket, layout.evaluation_key, document, "application/json")

    champion = ports.registry.champion(names.model_package_group(model.name))
    scored = evaluation.champion
    if champion is not None and scored is not None and champion.version == request.run.champion_version:
        champion = champion.model_copy(update={"holdout": scored})
    decision = judge(model.gate, evaluation, champion, recent_holdout=request.run.holdout is not None)
    result = GateResult(
        passed=decision.passed,
        reasons=decision.reasons,
        notes=decision.notes,
        metric=model.gate.metric,
        candidate=dict(evaluation.metrics),
        champion=champion,
        evaluation_uri=layout.uri(layout.evaluation_key),
    )
    ports.ledger.update(
        RunItem.evaluated(
            model.name,
            layout.job,
            passed=result.passed,
            metrics=result.candidate,
            gate=result.model_dump_json(),
            reasons=result.reasons,
            evaluation_uri=result.evaluation_uri,
            at=ports.clock(),
        )
    )
    ports.metrics.count(PASSED_METRIC if result.passed else REJECTED_METRIC, model.name)
    log.info(
        "candidate %s %s",
        layout.job,
        "passed the gate" if result.passed else "was rejected",
        extra={"job_name": layout.job, "reasons": result.reasons, "notes": result.notes},
    )
    return result
