"""The stateful stack: what must survive every redeploy of the pipeline (key, bucket, ledger)."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from headrace.naming import Names, Outputs
from stacks.data_store import DataStore


class DataStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, names: Names, **kwargs: Any) -> None:
        super().__init__(
            scope, construct_id, description="Headrace stateful resources: data key, bucket, ledger", **kwargs
        )
        self.store = DataStore(self, "DataStore", names=names)

        # Stack-level outputs keep their id as their key: callers look them up by the names in Outputs.
        CfnOutput(self, Outputs.DATA_BUCKET, value=self.store.bucket.bucket_name)
        CfnOutput(self, Outputs.LEDGER_TABLE, value=self.store.ledger.table_name)
        CfnOutput(self, Outputs.DATA_KEY_ARN, value=self.store.key.key_arn)
        Tags.of(self).add("headrace:stage", names.stage)
