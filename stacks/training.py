"""One training state machine per model: the workflow ingest starts for each new dataset version."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Tags
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from headrace.config import ModelConfig
from headrace.naming import Names

LOG_RETENTION = logs.RetentionDays.ONE_MONTH


class Training(Construct):
    """A model's training workflow. For now a placeholder that accepts the dataset version and succeeds."""

    def __init__(self, scope: Construct, construct_id: str, *, names: Names, model: ModelConfig) -> None:
        super().__init__(scope, construct_id)
        name = names.training_state_machine(model.name)

        # The /aws/vendedlogs/ prefix keeps Step Functions' log delivery from growing the account's
        # CloudWatch Logs resource policy (which has a size limit) with one statement per log group.
        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{name}",
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.DESTROY,
        )

        # A Pass state's output is its input: the dataset version the ingest function started us with.
        prepare = sfn.Pass(self, "Prepare", comment="Receives the dataset version (placeholder for training)")
        definition = prepare.next(sfn.Succeed(self, "Done"))

        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=False,
        )
        Tags.of(self).add("headrace:model", model.name)
