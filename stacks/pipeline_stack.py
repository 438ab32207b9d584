"""The stateless stack: functions, rules and workflows, replaceable; it uses the data stack's resources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from headrace.config import ModelConfig
from headrace.naming import Names, Outputs
from headrace.serving.rollout import GUARDS
from headrace.stages import StageSettings
from stacks.alerts import Alerts
from stacks.dashboard import ModelDashboard
from stacks.data_store import DataStore
from stacks.deploy import Deployment, DeploySteps, EndpointInvokeRole
from stacks.idle import IdleEndpoints, idle_models
from stacks.ingest import Ingest
from stacks.monitoring import DRIFT_ALARM, DriftCheck, MonitoringSteps
from stacks.training import Training, TrainingSteps


def _construct_id(kind: str, model: ModelConfig) -> str:
    """`churn-eu` -> `TrainingChurnEu`: the logical IDs of a model's resources start with it."""
    return kind + "".join(part.capitalize() for part in model.name.split("-"))


def _alarm_names(names: Names, model: ModelConfig) -> list[str]:
    """Every alarm about `model`: its endpoint's rollout guards and its drift alarm."""
    return [
        *(names.endpoint_alarm(model.name, guard) for guard in GUARDS),
        names.model_alarm(model.name, DRIFT_ALARM),
    ]


class PipelineStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        models: Sequence[ModelConfig],
        store: DataStore,
        alerts: Alerts,
        stage: StageSettings,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="Headrace pipeline: ingest, training, deployment and monitoring",
            **kwargs,
        )

        steps = TrainingSteps(self, "TrainingSteps", names=names, models=models, store=store, stage=stage)
        training = {
            model.name: Training(
                self,
                _construct_id("Training", model),
                names=names,
                model=model,
                store=store,
                steps=steps,
                stage=stage,
            ).state_machine
            for model in models
        }
        ingest = Ingest(
            self, "Ingest", names=names, models=models, store=store, training=training, stage=stage
        )

        deploy_steps = DeploySteps(self, "DeploySteps", names=names, models=models, store=store, stage=stage)
        deployments = {
            model.name: Deployment(
                self,
                _construct_id("Deploy", model),
                names=names,
                model=model,
                store=store,
                steps=deploy_steps,
                serving_image=steps.serving_image,
                stage=stage,
            )
            for model in models
        }
        invoke_role = EndpointInvokeRole(
            self, "EndpointInvoke", names=names, endpoints=[d.endpoint_arn for d in deployments.values()]
        )

        monitoring = MonitoringSteps(
            self, "MonitoringSteps", names=names, models=models, store=store, training=training, stage=stage
        )
        drift = {
            model.name: DriftCheck(
                self,
                _construct_id("Drift", model),
                names=names,
                model=model,
                steps=monitoring,
                store=store,
                stage=stage,
            )
            for model in models
        }
        if idle_models(models):
            IdleEndpoints(self, "IdleEndpoints", names=names, models=models, store=store, stage=stage)

        # Every alarm of the stage notifies its alerts topic: found in the tree, so none can be missed.
        for alarm in self.node.find_all():
            if isinstance(alarm, cloudwatch.Alarm):
                alerts.route(alarm)
        dashboards = {
            model.name: ModelDashboard(
                self,
                _construct_id("ModelDashboard", model),
                names=names,
                model=model,
                alarm_names=_alarm_names(names, model),
            )
            for model in models
        }

        CfnOutput(self, Outputs.INGEST_FUNCTION, value=ingest.function.function_name)
        CfnOutput(self, Outputs.RETRAIN_FUNCTION, value=monitoring.retrain.function_name)
        CfnOutput(
            self,
            Outputs.ENDPOINT_INVOKE_ROLE,
            value=invoke_role.role.role_arn,
            description="Assume this role to call the stage's endpoints (sagemaker:InvokeEndpoint only)",
        )
        for model, check in drift.items():
            CfnOutput(self, Outputs.drift_state_machine(model), value=check.state_machine.state_machine_arn)
        for model, machine in training.items():
            CfnOutput(self, Outputs.training_state_machine(model), value=machine.state_machine_arn)
        for model, deployment in deployments.items():
            CfnOutput(
                self, Outputs.deploy_state_machine(model), value=deployment.state_machine.state_machine_arn
            )
            CfnOutput(self, Outputs.endpoint(model), value=deployment.endpoint_name)
        for model in dashboards:
            # The name itself, not a reference: it is fixed, and people open it in the console by name.
            CfnOutput(self, Outputs.dashboard(model), value=names.dashboard(model))
        Tags.of(self).add("headrace:stage", names.stage)
