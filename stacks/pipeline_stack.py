"""The stateless stack: functions, rules and workflows, replaceable; it uses the data stack's resources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from headrace.config import ModelConfig
from headrace.naming import Names, Outputs
from stacks.data_store import DataStore
from stacks.deploy import Deployment, DeploySteps
from stacks.ingest import Ingest
from stacks.monitoring import DriftCheck, MonitoringSteps
from stacks.training import Training, TrainingSteps


def _construct_id(kind: str, model: ModelConfig) -> str:
    """`churn-eu` -> `TrainingChurnEu`: the logical IDs of a model's resources start with it."""
    return kind + "".join(part.capitalize() for part in model.name.split("-"))


class PipelineStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        models: Sequence[ModelConfig],
        store: DataStore,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="Headrace pipeline: ingest, training, deployment and monitoring",
            **kwargs,
        )

        steps = TrainingSteps(self, "TrainingSteps", names=names, models=models, store=store)
        training = {
            model.name: Training(
                self, _construct_id("Training", model), names=names, model=model, store=store, steps=steps
            ).state_machine
            for model in models
        }
        ingest = Ingest(self, "Ingest", names=names, models=models, store=store, training=training)

        deploy_steps = DeploySteps(self, "DeploySteps", names=names, models=models, store=store)
        deployments = {
            model.name: Deployment(
                self,
                _construct_id("Deploy", model),
                names=names,
                model=model,
                store=store,
                steps=deploy_steps,
                serving_image=steps.serving_image,
            )
            for model in models
        }

        monitoring = MonitoringSteps(
            self, "MonitoringSteps", names=names, models=models, store=store, training=training
        )
        drift = {
            model.name: DriftCheck(
                self, _construct_id("Drift", model), names=names, model=model, steps=monitoring
            ).state_machine
            for model in models
        }

        CfnOutput(self, Outputs.INGEST_FUNCTION, value=ingest.function.function_name)
        CfnOutput(self, Outputs.RETRAIN_FUNCTION, value=monitoring.retrain.function_name)
        for model, machine in drift.items():
            CfnOutput(self, Outputs.drift_state_machine(model), value=machine.state_machine_arn)
        for model, machine in training.items():
            CfnOutput(self, Outputs.training_state_machine(model), value=machine.state_machine_arn)
        for model, deployment in deployments.items():
            CfnOutput(
                self, Outputs.deploy_state_machine(model), value=deployment.state_machine.state_machine_arn
            )
            CfnOutput(self, Outputs.endpoint(model), value=deployment.endpoint_name)
        Tags.of(self).add("headrace:stage", names.stage)
