"""The moto internals local hosting leans on (headrace/local/sagemaker/, seams/sagemaker.py): endpoint records
it mutates, the runtime response it replaces, the registry methods it wraps, and how moto renders a hand-made
status."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

from moto.core.responses import BaseResponse
from moto.sagemaker.models import FakeEndpoint, Model, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

from headrace.local.seams.sagemaker import invoke_response, runtime_error


def test_moto_still_lacks_update_endpoint_which_the_plane_adds() -> None:
    assert not hasattr(SageMakerResponse, "update_endpoint")


def test_the_wrapped_backend_methods_keep_their_signatures() -> None:
    assert list(inspect.signature(SageMakerModelBackend.create_endpoint).parameters) == [
        "self",
        "endpoint_name",
        "endpoint_config_name",
        "tags",
    ]
    assert list(inspect.signature(SageMakerModelBackend.delete_endpoint).parameters) == [
        "self",
        "endpoint_name",
    ]
    assert "model_approval_status" in inspect.signature(SageMakerModelBackend.update_model_package).parameters
    assert (
        "model_package_group_name" in inspect.signature(SageMakerModelBackend.create_model_package).parameters
    )
    assert callable(SageMakerRuntimeResponse.invoke_endpoint)


def test_an_endpoint_record_renders_the_attributes_hosting_sets() -> None:
    endpoint = FakeEndpoint(
        account_id="123456789012",
        region_name="us-east-1",
        endpoint_name="e",
        endpoint_config_name="c-v1-00000000",
        production_variants=[
            {"VariantName": "AllTraffic", "InitialInstanceCount": 1, "InitialVariantWeight": 1}
        ],
        data_capture_config={},
        tags=[],
    )
    endpoint.endpoint_status = "Updating"
    endpoint.endpoint_config_name = "c-v2-00000000"
    endpoint.pending_deployment_summary = {  # type: ignore[attr-defined]
        "EndpointConfigName": "c-v2-00000000",
        "StartTime": datetime.now(UTC),
    }
    rendered = endpoint.response_object
    assert rendered["EndpointStatus"] == "Updating"
    assert rendered["EndpointConfigName"] == "c-v2-00000000"
    assert rendered["PendingDeploymentSummary"]["EndpointConfigName"] == "c-v2-00000000"
    endpoint.pending_deployment_summary = None  # type: ignore[attr-defined]
    assert "PendingDeploymentSummary" not in endpoint.response_object


def test_a_model_record_keeps_its_primary_container() -> None:
    parameters = inspect.signature(Model.__init__).parameters
    assert {"primary_container", "containers"} <= set(parameters)


def test_moto_takes_a_handmade_response_status_from_its_headers() -> None:
    status, headers, body = BaseResponse._transform_response({}, runtime_error(424, "ModelError", "boom"))
    assert status == 424
    assert headers["x-amzn-ErrorType"] == "ModelError"
    assert '"message": "boom"' in body


def test_a_container_that_dies_mid_request_is_a_503_not_a_traceback() -> None:
    from types import SimpleNamespace

    class DeadHosting:
        def invoke(self, *args: object) -> None:
            raise ConnectionRefusedError("connection refused")

    response = SimpleNamespace(path="/endpoints/e/invocations", body=b"1,2", headers={}, region="us-east-1")
    status, headers, body = invoke_response(DeadHosting(), response)  # type: ignore[arg-type]
    assert (status, headers["x-amzn-ErrorType"]) == (503, "ServiceUnavailable")
    assert "did not answer" in body
