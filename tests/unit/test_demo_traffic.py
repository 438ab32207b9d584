"""The demo's traffic: every call under its own InferenceId, and what each sent kept so it can be labelled."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

from headrace.demo.traffic import Traffic, send_lines
from headrace.serving.client import EndpointClient
from headrace.waiting import wait_for


class ScoringRuntime:
    """sagemaker-runtime answering one score per CSV line: the line's first value / 10."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        lines = request["Body"].decode().splitlines()
        body = json.dumps({"predictions": [float(line.split(",")[0]) / 10 for line in lines]}).encode()
        return {"Body": io.BytesIO(body), "InvokedProductionVariant": "AllTraffic"}


class NoSageMaker:
    def describe_endpoint(self, **_: Any) -> dict[str, Any]:
        return {"EndpointStatus": "InService", "EndpointConfigName": "shop-v1-00000000"}


def test_send_lines_keeps_each_call_s_inference_id_rows_and_scores() -> None:
    runtime = ScoringRuntime()
    seen: list[int] = []
    sent = send_lines(EndpointClient("e", runtime=runtime), ["1,a", "2,b", "3,c"], 2, seen.append)
    assert sent.inference_ids == [r["InferenceId"] for r in runtime.requests]
    assert len(set(sent.inference_ids)) == 2 and all(uuid.UUID(i) for i in sent.inference_ids)
    assert sent.rows == [["1,a", "2,b"], ["3,c"]]
    assert sent.scores == [[0.1, 0.2], [0.3]]
    assert seen == [2, 3]


def test_rollout_traffic_sends_every_call_under_its_own_inference_id() -> None:
    runtime = ScoringRuntime()
    traffic = Traffic(EndpointClient("e", runtime=runtime), NoSageMaker(), ["1,a", "2,b"], 1, lambda: 0.0)
    traffic.start()
    try:
        wait_for(lambda: len(traffic.answers) >= 5 or None, "five answers", timeout_s=10)
    finally:
        traffic.stop()
    answered = len(traffic.sent.inference_ids)
    assert traffic.sent.inference_ids == [r["InferenceId"] for r in runtime.requests][:answered]
    assert len(set(traffic.sent.inference_ids)) == answered >= 5
    assert traffic.sent.rows[:2] == [["1,a"], ["2,b"]]
