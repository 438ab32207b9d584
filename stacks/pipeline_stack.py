"""The stateless stack: functions, rules and workflows, replaceable; it uses the data stack's resources.

The functions every model shares come first, then each model's own workflows (stacks/model_pipeline.py), then
what spans the models: data arrival, the endpoint invoke role, the idle sweep and the alarms' routing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from headrace.config import ModelConfig
from headrace.naming import Names, Outputs
from headrace.stages import StageSettings
from stacks.alerts import Alerts
from stacks.batch import BatchSteps
from stacks.data_store import DataStore
from stacks.deploy import DeploySteps, EndpointInvokeRole
from stacks.functions import FunctionFactory
from stacks.idle import IdleEndpoints, idle_models
from stacks.ingest import Ingest
from stacks.model_pipeline import ModelPipeline, SharedSteps
from stacks.monitoring import MonitoringSteps
from stacks.quality import QualitySteps
from stacks.training import TrainingSteps
from stacks.wiring import Wiring


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

        wiring = Wiring.of(self, names, store)
        factory = FunctionFactory(models=models, stage=stage, key=store.key, wiring=wiring)
        steps = SharedSteps(
            training=TrainingSteps(self, "TrainingSteps", names=names, store=store, factory=factory),
            deploy=DeploySteps(self, "DeploySteps", names=names, store=store, factory=factory),
            monitoring=MonitoringSteps(
                self, "MonitoringSteps", names=names, models=models, store=store, factory=factory
            ),
            quality=QualitySteps(
                self, "QualitySteps", names=names, models=models, store=store, factory=factory
            ),
            batch=BatchSteps(self, "BatchSteps", names=names, store=store, factory=factory),
        )
        pipelines = [
            ModelPipeline(self, model, names=names, store=store, stage=stage, steps=steps, wiring=wiring)
            for model in models
        ]
        ingest = Ingest(
            self,
            "Ingest",
            names=names,
            store=store,
            factory=factory,
            training=[p.training.state_machine for p in pipelines],
            batch=[p.batch.state_machine for p in pipelines],
        )
        invoke_role = EndpointInvokeRole(
            self, "EndpointInvoke", names=names, endpoints=[p.deployment.endpoint_arn for p in pipelines]
        )
        if idle_models(models):
            IdleEndpoints(self, "IdleEndpoints", names=names, models=models, store=store, factory=factory)

        # Every alarm of the stage notifies its alerts topic: found in the tree, so none can be missed.
        for alarm in self.node.find_all():
            if isinstance(alarm, cloudwatch.Alarm):
                alerts.route(alarm)

        CfnOutput(self, Outputs.INGEST_FUNCTION, value=ingest.function.function_name)
        CfnOutput(self, Outputs.RETRAIN_FUNCTION, value=steps.monitoring.retrain.function_name)
        CfnOutput(
            self,
            Outputs.ENDPOINT_INVOKE_ROLE,
            value=invoke_role.role.role_arn,
            description="Assume this role to call the stage's endpoints (sagemaker:InvokeEndpoint only)",
        )
        Tags.of(self).add("headrace:stage", names.stage)
