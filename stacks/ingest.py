"""Data arrival: S3 Object Created events in the data bucket reach the ingest function.

The rule matches every key except the folders the pipeline writes itself, so that a file dropped anywhere a
person might drop one (under a prefix no model owns, a misspelt folder, the bucket's root) still reaches
ingest, which quarantines it or records it as misplaced instead of leaving it unnoticed (issue 14, #10).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from headrace.ingest.routing import (
    GROUND_TRUTH,
    GROUND_TRUTH_ACCEPTED,
    PIPELINE_FOLDERS,
    PIPELINE_SUBFOLDERS,
    QUARANTINE,
)
from headrace.ingest.settings import IngestSettings
from headrace.ingest.sizing import ingest_memory_mb
from headrace.naming import Names
from stacks import nag
from stacks.assets import managed_layers
from stacks.data_store import DataStore
from stacks.functions import FunctionFactory, StepFunction, dead_letter_queue
from stacks.wiring import DEFAULT_EVENT_BUS

INGEST_SERVICE = "headrace-ingest"
# Any depth before /incoming/ (EventBridge's and IAM's `*` both match '/'). Quarantined copies must therefore
# never keep an "/incoming/" segment in their key, or they would arrive again. It also covers ground-truth
# drops (`<model>/ground-truth/incoming/*`) and production datasets (`<model>/incoming/production/*`).
INCOMING_KEYS = "*/incoming/*"
# Canonical copies of accepted ground-truth files (headrace/quality/labels.py accepted_key).
GROUND_TRUTH_ACCEPTED_KEYS = f"*/{GROUND_TRUTH}/{GROUND_TRUTH_ACCEPTED}/*"
QUARANTINE_KEYS = "*/quarantine/*"
DATASET_KEYS = "*/datasets/*"
BATCH_INPUT_KEYS = "*/batch/input/*"


def data_arrival_rule_name(names: Names) -> str:
    return f"{names.prefix}-data-arrival"


def pipeline_output_keys(models: Sequence[str]) -> list[str]:
    """Keys the pipeline writes in the data bucket, which the data-arrival rule leaves out: each model's own
    folders, and quarantine folders under any prefix (an unknown prefix's rejections are filed there)."""
    owned = [f"{model}/{folder}/*" for model in models for folder in PIPELINE_FOLDERS if folder != QUARANTINE]
    # Inside ground-truth/ only accepted/ is ours: files dropped in ground-truth/incoming/ must arrive.
    within = [f"{model}/{folder}/*" for model in models for folder in PIPELINE_SUBFOLDERS]
    return [QUARANTINE_KEYS, *owned, *within]


class Ingest(Construct):
    """The ingest function, the data-arrival rule that feeds it, and the queues that keep what failed."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        store: DataStore,
        factory: FunctionFactory,
        training: Sequence[sfn.IStateMachine],
        batch: Sequence[sfn.IStateMachine] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        # Async invocations that still fail after Lambda's own retries land in FailedInvocations.
        self.function = factory.function_in(
            self,
            StepFunction(
                construct_id="Ingest",
                folder="ingest",
                settings=IngestSettings,
                function_name=names.ingest_function,
                description=(
                    "Validates files dropped under <model>/incoming/; starts training once per version"
                ),
                # Sized to hold a file of the largest max_file_mb at its peak (headrace/ingest/sizing.py);
                # synth refuses a max_file_mb no function can hold.
                memory_mb=ingest_memory_mb(factory.models),
                timeout=Duration.minutes(5),
                needs_pandas=True,
                invoked_async=True,
                service_name=INGEST_SERVICE,
            ),
            managed_layers(self),
        )
        self.failed_invocations = self.function.dead_letter_queue

        store.bucket.grant_read(self.function, INCOMING_KEYS)
        # An accepted file is copied (server-side, from the version read) to <model>/datasets/<sha256>/; a
        # rejected one to <model>/quarantine/... beside its reason.json. Nothing is ever deleted.
        store.bucket.grant_put(self.function, DATASET_KEYS)
        store.bucket.grant_put(self.function, QUARANTINE_KEYS)
        # An accepted ground-truth file is written in canonical form beside the others of its model.
        store.bucket.grant_put(self.function, GROUND_TRUTH_ACCEPTED_KEYS)
        # A validated batch file, header-less, as the transform job reads it (headrace/batch/layout.py).
        store.bucket.grant_put(self.function, BATCH_INPUT_KEYS)
        store.ledger.grant_read_write_data(self.function)
        nag.accept_object_grants(
            self.function,
            store.bucket,
            read=[INCOMING_KEYS],
            put=[DATASET_KEYS, QUARANTINE_KEYS, GROUND_TRUTH_ACCEPTED_KEYS, BATCH_INPUT_KEYS],
        )
        nag.accept_key_grants(self.function)
        for machine in [*training, *batch]:
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
            description="S3 Object Created in the data bucket, except pipeline output -> ingest",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [store.bucket.bucket_name]},
                    "object": {
                        "key": events.Match.anything_but_wildcard(
                            *pipeline_output_keys([m.name for m in factory.models])
                        )
                    },
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
