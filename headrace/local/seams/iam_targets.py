"""What EventBridge and Scheduler check before they deliver to a target, and where a refused delivery goes.

A rule delivers to a state machine through the target's role (states:StartExecution) and to a function
through the function's resource policy (events.amazonaws.com, aws:SourceArn the rule); a schedule always
through its target's execution role (EventBridge Scheduler user guide, "Set up the execution role").
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends

from headrace.local.iam import AccessDenied
from headrace.local.scheduler.schedule import Schedule
from headrace.local.seams.iam import LocalIam

log = logging.getLogger("headrace.local.iam")

# What each kind of target is invoked with (the Scheduler and EventBridge user guides' target permissions).
_INVOKE_ACTIONS = {"states": "states:StartExecution", "lambda": "lambda:InvokeFunction"}


class RuleTargets:
    """What EventBridge checks before it delivers a rule's match: a state machine target through the
    target's role (states:StartExecution), a function through the function's resource policy
    (events.amazonaws.com, aws:SourceArn the rule). A denied delivery is not retried: it goes to the
    target's dead-letter queue, which must allow EventBridge itself (queue policy, and the queue's key)."""

    def __init__(self, iam: LocalIam) -> None:
        self._iam = iam

    def denial(self, rule_arn: str, target: dict[str, Any]) -> AccessDenied | None:
        arn = str(target["Arn"])
        try:
            if arn.split(":")[2] == "states":
                role = str(target.get("RoleArn") or "")
                self._iam.sessions.check(role, "events.amazonaws.com", rule_arn)
                self._iam.authorize_role(role, "states:StartExecution", arn, "EventBridge")
            else:
                self._iam.authorize_service("events.amazonaws.com", "lambda:InvokeFunction", arn, rule_arn)
        except AccessDenied as denied:
            return denied
        return None

    def dead_letter(
        self, rule_arn: str, target: dict[str, Any], event: dict[str, Any], denied: AccessDenied
    ) -> None:
        queue_arn = (target.get("DeadLetterConfig") or {}).get("Arn")
        if not queue_arn:
            log.error("event to %s dropped (no dead-letter queue): %s", target["Arn"], denied)
            return
        try:
            self._iam.authorize_service("events.amazonaws.com", "sqs:SendMessage", queue_arn, rule_arn)
            owner = queue_arn.split(":")[4]
            queue = sqs_backends[owner][self._iam.region].get_queue(queue_arn.rsplit(":", 1)[-1])
            if key := self._iam.store.key_arn(getattr(queue, "kms_master_key_id", None), owner):
                for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                    self._iam.authorize_service("events.amazonaws.com", action, key, rule_arn)
        except AccessDenied as undeliverable:
            log.error(
                "event to %s dropped: its dead-letter queue refused it: %s", target["Arn"], undeliverable
            )
            return
        from headrace.local.seams.targets import MotoTargets

        attributes = {
            "ERROR_CODE": "NO_PERMISSIONS",
            "ERROR_MESSAGE": str(denied)[:1000],
            "RULE_ARN": rule_arn,
            "TARGET_ARN": str(target["Arn"]),
        }
        MotoTargets().send_message(queue_arn, json.dumps(event), attributes)


class ScheduleTargets:
    """Scheduler assumes the schedule's execution role for every call it makes for the schedule: starting the
    target, and sending an undeliverable input to the dead-letter queue (sqs:SendMessage)."""

    def __init__(self, iam: LocalIam) -> None:
        self._iam = iam

    def authorize(self, schedule: Schedule) -> None:
        """Raises AccessDenied when the schedule's role may not invoke its target."""
        target = schedule.target
        action = _INVOKE_ACTIONS.get(target.arn.split(":")[2] if target.arn.count(":") >= 5 else "")
        if action:
            self._iam.sessions.check(target.role_arn or "", "scheduler.amazonaws.com", schedule.arn)
            self._iam.authorize_role(target.role_arn or "", action, target.arn, "Scheduler")

    def authorize_dead_letter(self, schedule: Schedule) -> None:
        if schedule.target.dead_letter_arn:
            self._iam.sessions.check(schedule.target.role_arn or "", "scheduler.amazonaws.com", schedule.arn)
            self._iam.authorize_role(
                schedule.target.role_arn or "",
                "sqs:SendMessage",
                schedule.target.dead_letter_arn,
                "Scheduler",
            )


class AlarmActions:
    """CloudWatch publishes an alarm's SNS action as cloudwatch.amazonaws.com: the topic's policy must allow
    it, and an encrypted topic's key policy too (SNS developer guide, "Encrypted topics and AWS services")."""

    def __init__(self, iam: LocalIam) -> None:
        self._iam = iam

    def authorize_publish(self, alarm_arn: str, topic_arn: str) -> None:
        service = "cloudwatch.amazonaws.com"
        self._iam.authorize_service(service, "sns:Publish", topic_arn, alarm_arn)
        key_id: str | None = None
        owner = topic_arn.split(":")[4] if topic_arn.count(":") >= 5 else self._iam.account
        with contextlib.suppress(Exception):  # a topic that does not exist has no key
            key_id = sns_backends[owner][self._iam.region].get_topic(topic_arn).kms_master_key_id
        key = self._iam.store.key_arn(key_id or None, owner)
        if key:
            for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                self._iam.authorize_service(service, action, key, alarm_arn)

    def checked(self, publish: Callable[[str, str, str], None]) -> Callable[[str, str, str], None]:
        """`publish(topic, message, subject)` that first checks what CloudWatch's publish needs; a refused
        action is logged, as CloudWatch records a failed action in the alarm's history."""

        def publish_checked(topic_arn: str, message: str, subject: str) -> None:
            alarm_arn = str(json.loads(message).get("AlarmArn", ""))
            try:
                self.authorize_publish(alarm_arn, topic_arn)
            except AccessDenied as denied:
                log.error("alarm action %s failed: %s", topic_arn, denied)
                return
            publish(topic_arn, message, subject)

        return publish_checked
