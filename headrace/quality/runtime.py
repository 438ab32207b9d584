"""What the quality functions' handlers build once per environment (headrace.lambda_env.per_environment):
the drift check's settings (the data bucket), the deployment's models and the quality check's ports."""

from __future__ import annotations

from pathlib import Path

from headrace.lambda_env import Runtime, models_for
from headrace.monitoring.runtime import MONITORING_DOMAIN, DriftSettings
from headrace.quality.aws import connect_quality
from headrace.quality.ports import QualityPorts

# The same environment as the drift check's functions: the data bucket, the ledger, the metrics namespace.
QualitySettings = DriftSettings

__all__ = ["MONITORING_DOMAIN", "QualitySettings", "quality_runtime"]


def quality_runtime(
    settings: QualitySettings, models_document: Path
) -> Runtime[QualitySettings, QualityPorts]:
    return Runtime(
        settings=settings, models=models_for(settings, models_document), ports=connect_quality(settings)
    )
