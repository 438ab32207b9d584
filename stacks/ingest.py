"""Data arrival: S3 Object Created events under `<model>/incoming/` reach the ingest function.

The rule matches every model prefix, known or not, so that a file dropped under a prefix no model owns
still reaches ingest, which quarantines it with a reason instead of leaving it unnoticed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from headrace.config import ModelConfig
from headrace.layers import LAMBDA_ARCHITECTURE, LAMBDA_PYTHON_RUNTIME
from headrace.naming import Names
from headrace.stages import StageSettings
from stacks import nag
from stacks.assets import FUNCTIONS_DIR, managed_layers, stage_function_asset, staging_directory
from stacks.data_store import DataStore
from stacks.functions import dead_letter_queue, execution_role
from stacks.stage import LAMBDA_LOGS, log_group

INGEST_SERVICE = "headrace-ingest"
DEFAULT_EVENT_BUS = "default"
# Any depth before /incoming/ (EventBridge's and IAM's `*` both match '/'). Quarantined copies must therefore
# never keep an "/incoming/" segment in their key, or they would arrive again.
INCOMING_KEYS = "*/incoming/*"
QUARANTINE_KEYS = "*/quarantine/*"
DATASET_KEYS = "*/datasets/*"

_ARCHITECTURES = {"x86_64": lambda_.Architecture.X86_64, "arm64": lambda_.Architecture.ARM_64}


def data_arrival_rule_name(names: Names) -> str:
    return f"{names.prefix}-data-arrival"


class Ingest(Construct):
    """The ingest function, the data-arrival rule that feeds it, and the queues that keep what failed."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        models: Sequence[ModelConfig],
        store: DataStore,
        training: Mapping[str, sfn.IStateMachine],
        stage: StageSettings,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)

        # Async invocations that still fail after Lambda's own retries land here.
        self.failed_invocations = dead_letter_queue(self, "FailedInvocations", store.key)
        function_logs = log_group(self, "Logs", f"{LAMBDA_LOGS}{names.ingest_function}", stage, store.key)
        layers = managed_layers(self)
        role = execution_role(self, function_logs, names.ingest_function)
        self.function = lambda_.Function(
            self,
            "Function",
            function_name=names.ingest_function,
            description="Validates files dropped under <model>/incoming/; starts training once per version",
            runtime=lambda_.Runtime(LAMBDA_PYTHON_RUNTIME, lambda_.RuntimeFamily.PYTHON),
            architecture=_ARCHITECTURES[LAMBDA_ARCHITECTURE],
            handler="handler.handler",
            code=lambda_.Code.from_asset(
                str(stage_function_asset(FUNCTIONS_DIR / "ingest", models, staging_directory(self)))
            ),
            layers=[layers.powertools, layers.sdk_for_pandas],
            # Reading and validating a file of up to max_file_mb with pandas: memory also buys CPU in Lambda.
            memory_size=1024,
            timeout=Duration.minutes(5),
            log_group=function_logs,
            role=role,
            environment={
                "POWERTOOLS_SERVICE_NAME": INGEST_SERVICE,
                "POWERTOOLS_METRICS_NAMESPACE": names.metric_namespace,
                "HEADRACE_STAGE": names.stage,
                "DATA_BUCKET": store.bucket.bucket_name,
                "LEDGER_TABLE": store.ledger.table_name,
                "TRAINING_STATE_MACHINES": stack.to_json_string(
                    {model: machine.state_machine_arn for model, machine in sorted(training.items())}
                ),
                "EVENT_BUS_NAME": DEFAULT_EVENT_BUS,
            },
            dead_letter_queue=self.failed_invocations,
            retry_attempts=2,
        )
        nag.accept_pinned_runtime(self.function)

        store.bucket.grant_read(self.function, INCOMING_KEYS)
        # An accepted file is copied (server-side, from the version read) to <model>/datasets/<sha256>/; a
        # rejected one to <model>/quarantine/... beside its reason.json. Nothing is ever deleted.
        store.bucket.grant_put(self.function, DATASET_KEYS)
        store.bucket.grant_put(self.function, QUARANTINE_KEYS)
        store.ledger.grant_read_write_data(self.function)
        nag.accept_object_grants(
            role, store.bucket, read=[INCOMING_KEYS], put=[DATASET_KEYS, QUARANTINE_KEYS]
        )
        nag.accept_key_grants(role)
        for machine in training.values():
            machine.grant_start_execution(self.function)
        default_bus = events.EventBus.from_event_bus_name(self, "DefaultBus", DEFAULT_EVENT_BUS)
        default_bus.grant_put_events_to(self.function)

        # Events EventBridge could not deliver (after its retries) land here rather than vanish.
        self.undelivered_events = dead_letter_queue(self, "UndeliveredEvents", store.key)
        nag.accept(self.undelivered_events, "SQS3", nag.DEAD_LETTER_QUEUE)
        self.rule = events.Rule(
            self,
            "DataArrival",
            rule_name=data_arrival_rule_name(names),
            description="S3 Object Created under <model>/incoming/ in the data bucket -> ingest",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [store.bucket.bucket_name]},
                    "object": {"key": events.Match.wildcard(INCOMING_KEYS)},
                },
            ),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    dead_letter_queue=self.undelivered_events,
                    retry_attempts=4,
                    max_event_age=Duration.hours(2),
                )
            ],
        )
