"""The stage's alerts: one SNS topic every CloudWatch alarm of the stage and its cost budget report to.

In the stateful stack: people confirm subscriptions to it, and a redeploy of the pipeline must not lose them.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from headrace.naming import Names
from headrace.stages import StageSettings

# The budget's notifications, in percent of the monthly amount: spent so far, and forecast for the month.
BUDGET_ACTUAL_PERCENT = 80
BUDGET_FORECAST_PERCENT = 100
# Every Headrace resource carries it (Tags.of(stack)); Billing must have it activated as a cost allocation
# tag before a budget filtered on it sees any cost.
STAGE_TAG = "headrace:stage"


class Alerts(Construct):
    """The topic (encrypted with the stage key, TLS only), who may publish to it, and the budget."""

    def __init__(
        self, scope: Construct, construct_id: str, *, names: Names, stage: StageSettings, key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=names.alerts_topic,
            display_name=f"Headrace {names.stage} alerts",
            master_key=key,
            enforce_ssl=True,
        )
        # The key policy lets these services use the stage key (stacks/data_store.py, ALERT_PUBLISHERS); the
        # topic policy lets them publish, for this account's alarms and budgets only.
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            )
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="BudgetsPublish",
                principals=[iam.ServicePrincipal("budgets.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {"aws:SourceArn": f"arn:{stack.partition}:budgets::{stack.account}:*"},
                },
            )
        )
        if stage.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(stage.alarm_email))
        self.budget = self._budget(names, stage) if stage.budget_usd else None

    def route(self, alarm: cloudwatch.Alarm) -> None:
        """`alarm` entering ALARM notifies the topic (besides what else listens to its state changes)."""
        alarm.add_alarm_action(cloudwatch_actions.SnsAction(self.topic))

    def _budget(self, names: Names, stage: StageSettings) -> budgets.CfnBudget:
        def notify(kind: str, percent: int) -> budgets.CfnBudget.NotificationWithSubscribersProperty:
            return budgets.CfnBudget.NotificationWithSubscribersProperty(
                notification=budgets.CfnBudget.NotificationProperty(
                    notification_type=kind,
                    comparison_operator="GREATER_THAN",
                    threshold=percent,
                    threshold_type="PERCENTAGE",
                ),
                subscribers=[
                    budgets.CfnBudget.SubscriberProperty(
                        subscription_type="SNS", address=self.topic.topic_arn
                    )
                ],
            )

        budget = budgets.CfnBudget(
            self,
            "Budget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_name=names.budget,
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=stage.budget_usd or 0, unit="USD"),
                # Cost Explorer's tag filter syntax: user:<key>$<value>.
                cost_filters={"TagKeyValue": [f"user:{STAGE_TAG}${names.stage}"]},
            ),
            notifications_with_subscribers=[
                notify("ACTUAL", BUDGET_ACTUAL_PERCENT),
                notify("FORECASTED", BUDGET_FORECAST_PERCENT),
            ],
        )
        # Budgets checks that it may publish when the budget is created: the topic policy comes first.
        budget.node.add_dependency(self.topic)
        return budget
