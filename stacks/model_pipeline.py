"""One model's part of the pipeline stack: its training workflow, deploy workflow, drift check, dashboard
and outputs, over the functions every model shares."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import CfnOutput, Stack

from headrace.config import ModelConfig
from headrace.naming import Names, Outputs
from headrace.serving.rollout import GUARDS
from headrace.stages import StageSettings
from stacks.batch import Batch, BatchSteps
from stacks.dashboard import ModelDashboard
from stacks.data_store import DataStore
from stacks.deploy import Deployment, DeploySteps
from stacks.monitoring import DRIFT_ALARM, DriftCheck, MonitoringSteps
from stacks.quality import QUALITY_ALARM, QualityCheck, QualitySteps
from stacks.training import Training, TrainingSteps
from stacks.wiring import Wiring


@dataclass(frozen=True)
class SharedSteps:
    """The functions (and images) every model's workflows call, each reading the model from its payload."""

    training: TrainingSteps
    deploy: DeploySteps
    monitoring: MonitoringSteps
    quality: QualitySteps
    batch: BatchSteps


def construct_id(kind: str, model: ModelConfig) -> str:
    """`churn-eu` -> `TrainingChurnEu`: the logical IDs of a model's resources start with it."""
    return kind + "".join(part.capitalize() for part in model.name.split("-"))


def alarm_names(names: Names, model: ModelConfig) -> list[str]:
    """Every alarm about `model`: its endpoint's rollout guards, its drift and live-quality alarms."""
    return [
        *(names.endpoint_alarm(model.name, guard) for guard in GUARDS),
        names.model_alarm(model.name, DRIFT_ALARM),
        names.model_alarm(model.name, QUALITY_ALARM),
    ]


class ModelPipeline:
    """A model's constructs, added to the stack itself.

    Deliberately not a construct of its own: one more level in the construct tree would give every resource
    of the model a new logical ID, and CloudFormation would replace them, which fails for (or deletes) the
    resources whose names are fixed (state machines, alarms, dashboards).
    """

    def __init__(
        self,
        stack: Stack,
        model: ModelConfig,
        *,
        names: Names,
        store: DataStore,
        stage: StageSettings,
        steps: SharedSteps,
        wiring: Wiring,
    ) -> None:
        self.model = model
        self.training = Training(
            stack,
            construct_id("Training", model),
            names=names,
            model=model,
            store=store,
            steps=steps.training,
            stage=stage,
        )
        machine = self.training.state_machine
        # The functions that start training runs: the retrain function here, ingest in its own construct.
        wiring.add_training_machine(model.name, machine)
        machine.grant_start_execution(steps.monitoring.retrain)
        self.deployment = Deployment(
            stack,
            construct_id("Deploy", model),
            names=names,
            model=model,
            store=store,
            steps=steps.deploy,
            serving_image=self.training.images.serve,
            stage=stage,
        )
        self.drift = DriftCheck(
            stack,
            construct_id("Drift", model),
            names=names,
            model=model,
            steps=steps.monitoring,
            store=store,
            stage=stage,
        )
        self.quality = QualityCheck(
            stack,
            construct_id("Quality", model),
            names=names,
            model=model,
            steps=steps.quality,
            store=store,
            stage=stage,
        )
        self.batch = Batch(
            stack,
            construct_id("Batch", model),
            names=names,
            model=model,
            store=store,
            steps=steps.batch,
            stage=stage,
        )
        # Ingest starts a batch execution for each validated file dropped under <model>/batch/incoming/.
        wiring.add_batch_machine(model.name, self.batch.state_machine)
        ModelDashboard(
            stack,
            construct_id("ModelDashboard", model),
            names=names,
            model=model,
            alarm_names=alarm_names(names, model),
        )

        CfnOutput(stack, Outputs.training_state_machine(model.name), value=machine.state_machine_arn)
        CfnOutput(
            stack,
            Outputs.deploy_state_machine(model.name),
            value=self.deployment.state_machine.state_machine_arn,
        )
        CfnOutput(stack, Outputs.endpoint(model.name), value=self.deployment.endpoint_name)
        CfnOutput(
            stack, Outputs.drift_state_machine(model.name), value=self.drift.state_machine.state_machine_arn
        )
        CfnOutput(
            stack,
            Outputs.quality_state_machine(model.name),
            value=self.quality.state_machine.state_machine_arn,
        )
        CfnOutput(
            stack, Outputs.batch_state_machine(model.name), value=self.batch.state_machine.state_machine_arn
        )
        # The serving image as this stage published it (CDK's asset repository of the deploying account and
        # region) and its asset hash: a version promoted here is registered with this image, never with the
        # source stage's, whose repository prod's hosting role cannot pull from (headrace/promotion).
        serving_image = self.training.images.serve
        CfnOutput(stack, Outputs.serving_image(model.name), value=serving_image.image_uri)
        CfnOutput(stack, Outputs.serving_image_digest(model.name), value=serving_image.asset_hash)
        # The name itself, not a reference: it is fixed, and people open it in the console by name.
        CfnOutput(stack, Outputs.dashboard(model.name), value=names.dashboard(model.name))
