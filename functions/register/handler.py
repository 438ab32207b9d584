"""Register Lambda: a candidate that passed the gate becomes a Model Registry version; `$.registered` out.

Thin on purpose: parse the payload, call `headrace.training.register.register`, return the version.
Settings, models and AWS clients are built on the first invocation of each environment. The stage's approval
policy (HEADRACE_APPROVAL_POLICY, from stages.yaml) may override the model's gate.approval.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from headrace.lambda_env import per_environment
from headrace.metrics import PowertoolsMetrics
from headrace.stages import ApprovalPolicy
from headrace.training import aws
from headrace.training.lineage import under_stage_policy
from headrace.training.payloads import RegisterRequest, parse_request
from headrace.training.register import register
from headrace.training.runtime import TRAINING_DOMAIN, RegistryStep, model_named
from headrace.training.settings import RegisterSettings

# Written into the deployed asset by headrace.config.models_document; HEADRACE_MODELS_DIR overrides it.
MODELS_DOCUMENT = Path(__file__).parent / "models.json"

logger = Logger()
metrics = Metrics()


@dataclass(frozen=True)
class Runtime:
    step: RegistryStep
    approval: ApprovalPolicy


@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    runtime = _runtime()
    step = runtime.step
    logger.remove_keys(["model", "execution", "job_name"])  # a warm container must not log the last run's ids
    request = parse_request(RegisterRequest, event)
    logger.append_keys(model=request.model, job_name=request.run.job_name)
    registered = register(
        request,
        under_stage_policy(model_named(step.models, request.model), runtime.approval),
        names=step.settings.names,
        bucket=step.settings.data_bucket,
        store=step.store,
        ledger=step.ledger,
        registry=step.registry,
        metrics=PowertoolsMetrics(metrics),
        clock=aws.now,
    )
    logger.info(
        "model version registered",
        extra={"model_package_arn": registered.model_package_arn, "approval": registered.approval_status},
    )
    return registered.model_dump(mode="json")


@per_environment(RegisterSettings, logger=logger, metrics=metrics, domain=TRAINING_DOMAIN)
def _runtime(settings: RegisterSettings) -> Runtime:
    return Runtime(step=RegistryStep.connect(settings, MODELS_DOCUMENT), approval=settings.approval_policy)
