"""UpdateEndpointWeightsAndCapacities over the API changes the plane's real capacity: more serve processes of
the variant's model, traffic spread over them, instances retired without losing a call; and SageMaker's
refusals (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_UpdateEndpointWeightsAndCapacities.html)."""

# ruff: noqa: F811 (the imported `local` fixture is each test's parameter)

from __future__ import annotations

import threading

import pytest
from botocore.exceptions import ClientError

# The hosting module's `local` fixture, imported so its tests' stub hosting serves these too.
from tests.local.test_local_hosting import Hosting, local  # noqa: F401


def _capacity(local: Hosting, name: str, **variant: object) -> dict[str, object]:
    answer: dict[str, object] = local.sagemaker.update_endpoint_weights_and_capacities(
        EndpointName=name, DesiredWeightsAndCapacities=[{"VariantName": "AllTraffic", **variant}]
    )
    return answer


def _refusal(local: Hosting, name: str, changes: list[dict[str, object]]) -> str:
    with pytest.raises(ClientError) as raised:
        local.sagemaker.update_endpoint_weights_and_capacities(
            EndpointName=name, DesiredWeightsAndCapacities=changes
        )
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    return str(raised.value.response["Error"]["Message"])


def test_more_instances_are_more_serve_processes_and_fewer_lose_no_call(local: Hosting) -> None:
    local.endpoint("sized", local.config("sized-v1", {"AllTraffic": local.model("sized", "v1")}))
    answer = _capacity(local, "sized", DesiredInstanceCount=3)
    assert str(answer["EndpointArn"]).endswith(":endpoint/sized")
    described = local.settled("sized")
    [variant] = described["ProductionVariants"]
    assert (described["EndpointStatus"], variant["CurrentInstanceCount"]) == ("InService", 3)
    assert variant["DesiredInstanceCount"] == 3
    pids = local.hosting.pids("sized")
    assert sorted(pids) == ["sized-v1/AllTraffic", "sized-v1/AllTraffic#2", "sized-v1/AllTraffic#3"]
    assert len(set(pids.values())) == 3
    assert local.hosting.weights("sized") == {"sized-v1/AllTraffic": pytest.approx(1.0)}
    assert {local.invoke("sized", "1")[0]["model"] for _ in range(10)} == {"v1"}

    failures: list[str] = []
    stop = threading.Event()

    def call() -> None:
        while not stop.is_set():
            try:
                local.invoke("sized", "1")
            except Exception as exc:
                failures.append(str(exc))

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    try:
        _capacity(local, "sized", DesiredInstanceCount=1)
        described = local.settled("sized")
    finally:
        stop.set()
        caller.join(timeout=30)
    assert failures == []
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 1
    assert list(local.hosting.pids("sized")) == ["sized-v1/AllTraffic"]
    assert local.hosting.pids("sized")["sized-v1/AllTraffic"] in pids.values()
    _capacity(local, "sized", DesiredWeight=0.5)
    assert local.settled("sized")["ProductionVariants"][0]["CurrentWeight"] == 0.5
    assert local.hosting.weights("sized") == {"sized-v1/AllTraffic": 0.5}


def test_sagemaker_s_refusals(local: Hosting) -> None:
    local.endpoint("refusing", local.config("refusing-v1", {"AllTraffic": local.model("refusing", "v1")}))
    assert "Could not find endpoint" in _refusal(
        local, "missing", [{"VariantName": "AllTraffic", "DesiredInstanceCount": 2}]
    )
    assert "not present within endpoint configuration" in _refusal(
        local, "refusing", [{"VariantName": "Other", "DesiredInstanceCount": 2}]
    )
    twice = [{"VariantName": "AllTraffic", "DesiredWeight": 1.0}] * 2
    assert "non-unique" in _refusal(local, "refusing", twice)
    assert "inference components" in _refusal(
        local, "refusing", [{"VariantName": "AllTraffic", "DesiredInstanceCount": 0}]
    )
    # One update at a time: the endpoint is Updating until the first has run.
    _capacity(local, "refusing", DesiredInstanceCount=2)
    assert "Cannot update in-progress endpoint" in _refusal(
        local, "refusing", [{"VariantName": "AllTraffic", "DesiredInstanceCount": 3}]
    )
    described = local.settled("refusing")
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert len(local.hosting.pids("refusing")) == 2


def test_an_endpoint_starts_with_its_initial_instance_count(local: Hosting) -> None:
    config = local.config("counted-v1", {"AllTraffic": local.model("counted", "v1")}, instances=2)
    described = local.endpoint("counted", config)
    [variant] = described["ProductionVariants"]
    assert (variant["CurrentInstanceCount"], variant["DesiredInstanceCount"]) == (2, 2)
    assert variant["CurrentWeight"] == pytest.approx(1.0)
    assert len(set(local.hosting.pids("counted").values())) == 2
    assert local.hosting.weights("counted") == {"counted-v1/AllTraffic": pytest.approx(1.0)}
