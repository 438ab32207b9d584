"""DescribeScalingActivities, which moto's Application Auto Scaling (5.2.5) does not answer: the local
evaluator's activities (headrace/local/autoscaling/evaluator.py) of the caller's account, in the API's shape
(https://docs.aws.amazon.com/autoscaling/application/APIReference/API_DescribeScalingActivities.html)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse

# (account, ResourceId or None) -> that account's activities, newest first.
Activities = Callable[[str, str | None], list[dict[str, Any]]]


@contextlib.contextmanager
def activities_answered(activities: Activities) -> Iterator[None]:
    def describe_scaling_activities(self: ApplicationAutoScalingResponse) -> str:
        params = json.loads(self.body or "{}")
        sagemaker = params.get("ServiceNamespace") == "sagemaker"
        # moto serves the request in its signer's account (seams/authn.py sets x-moto-account-id).
        found = activities(self.current_account, params.get("ResourceId")) if sagemaker else []
        limit = int(params.get("MaxResults") or 50)
        start = int(params.get("NextToken") or 0)
        page = found[start : start + limit]
        answer: dict[str, Any] = {
            "ScalingActivities": [
                {k: v.timestamp() if isinstance(v, datetime) else v for k, v in a.items()} for a in page
            ]
        }
        if start + limit < len(found):
            answer["NextToken"] = str(start + limit)
        return json.dumps(answer)

    ApplicationAutoScalingResponse.describe_scaling_activities = describe_scaling_activities  # type: ignore[attr-defined]
    try:
        yield
    finally:
        del ApplicationAutoScalingResponse.describe_scaling_activities  # type: ignore[attr-defined]
