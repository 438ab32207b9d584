"""Evaluates every target-tracking policy on a SageMaker variant, as Application Auto Scaling does, and
applies its decisions: the policies and scalable targets from the Application Auto Scaling API (moto keeps
them), the metric from the endpoint's own AWS/SageMaker Invocations (published by the plane's hosting), the
change through `scale` (UpdateEndpointWeightsAndCapacities' effect, headrace/local/sagemaker/capacity.py).
Each account's policies are evaluated with that account's clients (`ScalingEvaluators`): Application Auto
Scaling scales only the account's own targets, from the account's own metrics.
An endpoint that is not InService is left alone: scaling is blocked while an update runs
(https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html). Each change is a scaling
activity, answered by DescribeScalingActivities (seams/autoscaling.py)."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from headrace.local.autoscaling.policy import Decision, TargetState, TrackingPolicy, decide
from headrace.local.aws import Clients

log = logging.getLogger("headrace.local")

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRIC = "SageMakerVariantInvocationsPerInstance"
# The metric is per minute (Invocations' 1-minute period); a shorter window is scaled up to a minute.
METRIC_WINDOW_S = 60.0
# DescribeScalingActivities keeps six weeks of history; the plane keeps the newest of each target.
KEPT_ACTIVITIES = 100

Scale = Callable[[str, str, int], None]


class ScalingEvaluator:
    def __init__(
        self,
        clients: Clients,
        scale: Scale,
        *,
        interval_s: float = 1.0,
        window_s: float = METRIC_WINDOW_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._clients = clients
        self._scale = scale
        self._interval_s = interval_s
        self._window_s = window_s
        self._clock = clock
        self._activities: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="headrace-autoscaling", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.evaluate()
            except Exception:
                log.exception("could not evaluate the scaling policies")

    def activities(self, resource_id: str | None = None) -> list[dict[str, Any]]:
        """DescribeScalingActivities' answer for the sagemaker namespace: newest first."""
        with self._lock:
            chosen = [a for r, kept in self._activities.items() if resource_id in (None, r) for a in kept]
        chosen.sort(key=lambda a: a["StartTime"], reverse=True)
        return [{k: v for k, v in a.items() if not k.startswith("_")} for a in chosen]

    def evaluate(self) -> None:
        scaling = self._clients.client("application-autoscaling")
        targets = scaling.describe_scalable_targets(ServiceNamespace=NAMESPACE, ScalableDimension=DIMENSION)
        policies = scaling.describe_scaling_policies(ServiceNamespace=NAMESPACE)["ScalingPolicies"]
        for target in targets["ScalableTargets"]:
            tracking = [
                p
                for p in policies
                if p["ResourceId"] == target["ResourceId"] and p.get("PolicyType") == "TargetTrackingScaling"
            ]
            self._evaluate(target, tracking)

    def _evaluate(self, target: dict[str, Any], policies: list[dict[str, Any]]) -> None:
        parts = target["ResourceId"].split("/")
        if len(parts) != 4:
            return
        endpoint, variant = parts[1], parts[3]
        described = self._describe(endpoint)
        if described is None or described["EndpointStatus"] != "InService":
            return
        summary = next(
            (v for v in described.get("ProductionVariants", []) if v["VariantName"] == variant), None
        )
        if summary is None:
            return
        now = self._clock()
        state = TargetState(
            min_capacity=int(target["MinCapacity"]),
            max_capacity=int(target["MaxCapacity"]),
            current=int(summary.get("CurrentInstanceCount") or 1),
            last_scale_out=self._last(target["ResourceId"], "out"),
            last_scale_in=self._last(target["ResourceId"], "in"),
        )
        per_instance = None
        for policy in policies:
            config = policy["TargetTrackingScalingPolicyConfiguration"]
            spec = config.get("PredefinedMetricSpecification") or {}
            if spec.get("PredefinedMetricType") != METRIC:
                continue  # customized metrics are not evaluated locally
            per_instance = self._per_instance(endpoint, variant, state.current, now)
            tracking = TrackingPolicy(
                target=float(config["TargetValue"]),
                scale_in_cooldown_s=float(config.get("ScaleInCooldown", 300)),
                scale_out_cooldown_s=float(config.get("ScaleOutCooldown", 300)),
                disable_scale_in=bool(config.get("DisableScaleIn", False)),
            )
            decision = decide(state, tracking, per_instance, now)
            if decision is not None:
                self._apply(target["ResourceId"], endpoint, variant, state.current, decision, now)
                return
        if not policies:
            decision = decide(state, TrackingPolicy(1.0, 0, 0), None, now)  # bounds alone
            if decision is not None:
                self._apply(target["ResourceId"], endpoint, variant, state.current, decision, now)

    def _describe(self, endpoint: str) -> dict[str, Any] | None:
        try:
            return dict(self._clients.client("sagemaker").describe_endpoint(EndpointName=endpoint))
        except Exception:
            return None

    def _per_instance(self, endpoint: str, variant: str, instances: int, now: datetime) -> float | None:
        """Invocations per instance per minute over the last window; None when nothing was published."""
        answer = self._clients.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName="Invocations",
            Dimensions=[
                {"Name": "EndpointName", "Value": endpoint},
                {"Name": "VariantName", "Value": variant},
            ],
            StartTime=now - timedelta(seconds=self._window_s),
            EndTime=now,
            Period=max(1, int(self._window_s)),
            Statistics=["Sum"],
        )
        points = answer.get("Datapoints", [])
        if not points:
            return 0.0  # an idle variant publishes nothing: no invocations
        total = sum(float(p["Sum"]) for p in points)
        return total * 60.0 / self._window_s / max(1, instances)

    def _last(self, resource_id: str, direction: str) -> datetime | None:
        with self._lock:
            kept = self._activities.get(resource_id, [])
            done = [a for a in kept if a["_direction"] == direction and a["StatusCode"] == "Successful"]
        return max((a["StartTime"] for a in done), default=None)

    def _apply(
        self, resource_id: str, endpoint: str, variant: str, current: int, decision: Decision, now: datetime
    ) -> None:
        activity: dict[str, Any] = {
            "ActivityId": str(uuid.uuid4()),
            "ServiceNamespace": NAMESPACE,
            "ResourceId": resource_id,
            "ScalableDimension": DIMENSION,
            "Description": f"Setting desired instance count to {decision.desired}.",
            "Cause": f"monitor alarm: {decision.cause}; changing the desired capacity from {current} "
            f"to {decision.desired}",
            "StartTime": now,
            "_direction": decision.direction,
        }
        try:
            self._scale(endpoint, variant, decision.desired)
            activity |= {
                "StatusCode": "Successful",
                "StatusMessage": "Successfully set desired instance count",
            }
        except Exception as exc:
            log.warning("scaling %s to %d failed: %s", resource_id, decision.desired, exc)
            activity |= {"StatusCode": "Failed", "StatusMessage": str(exc)[:1000]}
        activity["EndTime"] = self._clock()
        with self._lock:
            kept = self._activities.setdefault(resource_id, [])
            kept.append(activity)
            del kept[:-KEPT_ACTIVITIES]


class ScalingEvaluators:
    """One evaluator per account (a plane whose stages live in several): an account's scalable targets,
    policies, endpoints and Invocations are read with its own clients, and DescribeScalingActivities in an
    account answers that account's activities only, as on AWS, where a scalable target belongs to the account
    that registered it (its ScalableTargetARN names that account: https://docs.aws.amazon.com/autoscaling/
    application/APIReference/API_RegisterScalableTarget.html). Started, stopped and evaluated together."""

    def __init__(self, evaluators: dict[str, ScalingEvaluator]) -> None:
        self.evaluators = evaluators

    def start(self) -> None:
        for evaluator in self.evaluators.values():
            evaluator.start()

    def stop(self) -> None:
        for evaluator in self.evaluators.values():
            evaluator.stop()

    def evaluate(self) -> None:
        for evaluator in self.evaluators.values():
            evaluator.evaluate()

    def activities(self, account: str, resource_id: str | None = None) -> list[dict[str, Any]]:
        """DescribeScalingActivities' answer in `account` (none in an account the plane does not serve)."""
        evaluator = self.evaluators.get(account)
        return evaluator.activities(resource_id) if evaluator else []
