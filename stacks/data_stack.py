"""The stateful stack: what must survive every redeploy of the pipeline (key, buckets, ledger, alerts topic,
audit trail)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import CfnOutput, Stack, Tags
from constructs import Construct

from headrace.naming import Names, Outputs
from headrace.stages import StageSettings
from stacks.alerts import Alerts
from stacks.audit import DataAudit
from stacks.data_store import DataStore
from stacks.promotion import PromotionGrants
from stacks.stage import removal_policy


class DataStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: Names,
        stage: StageSettings,
        models: Sequence[str] = (),
        promoting_accounts: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description="Headrace stateful resources: stage key, data bucket, ledger, alerts topic",
            **kwargs,
        )
        self.store = DataStore(self, "DataStore", names=names, stage=stage)
        self.alerts = Alerts(self, "Alerts", names=names, stage=stage, key=self.store.key)
        self.audit = (
            DataAudit(
                self,
                "Audit",
                names=names,
                stage=stage,
                key=self.store.key,
                data_bucket=self.store.bucket,
                access_logs=self.store.access_logs,
            )
            if stage.cloudtrail_data_events
            else None
        )
        # Stages in other accounts that promote from this one read its versions (stages.yaml promote_from).
        self.promotion = (
            PromotionGrants(
                self,
                "PromotionGrants",
                names=names,
                models=models,
                accounts=promoting_accounts,
                bucket=self.store.bucket,
                key=self.store.key,
                removal=removal_policy(stage),
            )
            if promoting_accounts
            else None
        )

        # Stack-level outputs keep their id as their key: callers look them up by the names in Outputs.
        CfnOutput(self, Outputs.DATA_BUCKET, value=self.store.bucket.bucket_name)
        CfnOutput(self, Outputs.LEDGER_TABLE, value=self.store.ledger.table_name)
        CfnOutput(self, Outputs.DATA_KEY_ARN, value=self.store.key.key_arn)
        CfnOutput(
            self,
            Outputs.ALERTS_TOPIC,
            value=self.alerts.topic.topic_arn,
            description="Subscribe here to every alarm of the stage and its cost budget",
        )
        if self.audit is not None:
            CfnOutput(self, Outputs.AUDIT_TRAIL, value=names.audit_trail)
        Tags.of(self).add("headrace:stage", names.stage)
