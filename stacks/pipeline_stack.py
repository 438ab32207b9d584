"""The stateless stack: functions, rules and workflows, replaceable; it uses the data stack's resources."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from headrace.config import ModelConfig
from headrace.naming import Names, Outputs
from stacks.data_store import DataStore
from stacks.ingest import Ingest
from stacks.training import Training, TrainingSteps


def _construct_id(model: ModelConfig) -> str:
    """`churn-eu` -> `TrainingChurnEu`: the logical IDs of a model's resources start with it."""
    return "Training" + "".join(part.capitalize() for part in model.name.split("-"))


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
        super().__init__(scope, construct_id, description="Headrace pipeline: ingest and training", **kwargs)

        steps = TrainingSteps(self, "TrainingSteps", names=names, models=models, store=store)
        training = {
            model.name: Training(
                self, _construct_id(model), names=names, model=model, store=store, steps=steps
            ).state_machine
            for model in models
        }
        ingest = Ingest(self, "Ingest", names=names, models=models, store=store, training=training)

        CfnOutput(self, Outputs.INGEST_FUNCTION, value=ingest.function.function_name)
        for model, machine in training.items():
            CfnOutput(self, Outputs.training_state_machine(model), value=machine.state_machine_arn)
        Tags.of(self).add("headrace:stage", names.stage)
