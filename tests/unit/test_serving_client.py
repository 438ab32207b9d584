"""The endpoint client: what it sends to InvokeEndpoint, what it reads back, and how refusals surface."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from headrace.serving.client import (
    MAX_PAYLOAD_BYTES,
    EndpointClient,
    EndpointNotFound,
    PayloadTooLarge,
    PredictionError,
    RequestRejected,
    ServingError,
)

ENDPOINT = "headrace-dev-churn"


class RecordingRuntime:
    """sagemaker-runtime that keeps each request and answers with fixed predictions."""

    def __init__(self, answer: dict[str, Any] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answer = json.dumps(answer if answer is not None else {"predictions": [0.5]}).encode()

    def invoke_endpoint(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return {"Body": io.BytesIO(self.answer), "InvokedProductionVariant": "AllTraffic"}

    @property
    def body(self) -> Any:
        return json.loads(self.requests[-1]["Body"])


@pytest.fixture
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    runtime = boto3.client(
        "sagemaker-runtime",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(runtime) as stubber:
        yield runtime, stubber
        stubber.assert_no_pending_responses()


def answer(document: Any, variant: str = "AllTraffic") -> dict[str, Any]:
    data = json.dumps(document).encode()
    return {
        "Body": StreamingBody(io.BytesIO(data), len(data)),
        "ContentType": "application/json",
        "InvokedProductionVariant": variant,
    }


def model_error(stubber: Stubber, status: int | None, original: str | None, message: str = "") -> None:
    fields: dict[str, Any] = {
        "LogStreamArn": f"arn:aws:logs:us-east-1:1:log-group:/aws/sagemaker/Endpoints/{ENDPOINT}"
    }
    if status is not None:
        fields["OriginalStatusCode"] = status
    if original is not None:
        fields["OriginalMessage"] = original
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message=message or f"Received client error ({status}) from primary",
        http_status_code=424,
        modeled_fields=fields,
    )


def test_rows_of_mappings_are_sent_as_json_instances() -> None:
    runtime = RecordingRuntime()
    EndpointClient(ENDPOINT, runtime=runtime).predict([{"tenure_months": 3, "region": "north"}])
    request = runtime.requests[0]
    assert (request["EndpointName"], request["ContentType"], request["Accept"]) == (
        ENDPOINT,
        "application/json",
        "application/json",
    )
    assert runtime.body == {"instances": [{"tenure_months": 3, "region": "north"}]}


def test_rows_of_sequences_are_sent_as_lists_in_their_order() -> None:
    runtime = RecordingRuntime({"predictions": [0.1, 0.2]})
    EndpointClient(ENDPOINT, runtime=runtime).predict([(3, 49.5, None), [7, 12.0, "north"]])
    assert runtime.body == {"instances": [[3, 49.5, None], [7, 12.0, "north"]]}


def test_numpy_values_from_a_dataframe_are_sent_as_plain_numbers() -> None:
    runtime = RecordingRuntime()
    EndpointClient(ENDPOINT, runtime=runtime).predict([[np.int64(3), np.float32(0.5), np.bool_(True)]])
    assert runtime.body == {"instances": [[3, 0.5, True]]}


def test_predict_csv_sends_the_text_as_text_csv() -> None:
    runtime = RecordingRuntime()
    EndpointClient(ENDPOINT, runtime=runtime).predict_csv("3,49.5,,month-to-month\n")
    assert runtime.requests[0]["ContentType"] == "text/csv"
    assert runtime.requests[0]["Body"] == b"3,49.5,,month-to-month\n"


def test_a_target_variant_is_passed_to_invoke_endpoint() -> None:
    runtime = RecordingRuntime()
    EndpointClient(ENDPOINT, runtime=runtime).predict([[1]], target_variant="Canary")
    assert runtime.requests[0]["TargetVariant"] == "Canary"


def test_without_a_target_variant_sagemaker_chooses_one() -> None:
    runtime = RecordingRuntime()
    EndpointClient(ENDPOINT, runtime=runtime).predict([[1]])
    assert "TargetVariant" not in runtime.requests[0]


def test_every_call_carries_an_inference_id_the_caller_s_or_a_new_uuid4() -> None:
    runtime = RecordingRuntime()
    client = EndpointClient(ENDPOINT, runtime=runtime)
    given = client.invoke(b"1\n", "text/csv", inference_id="order-17")
    generated = [client.invoke_json([[1]]), client.invoke_json([[1]])]
    assert (runtime.requests[0]["InferenceId"], given.inference_id) == ("order-17", "order-17")
    assert [r.inference_id for r in generated] == [r["InferenceId"] for r in runtime.requests[1:]]
    assert {uuid.UUID(r.inference_id).version for r in generated} == {4}
    assert generated[0].inference_id != generated[1].inference_id


def test_an_inference_id_sagemaker_refuses_is_a_rejected_request(stubbed: tuple[Any, Stubber]) -> None:
    runtime, stubber = stubbed
    message = "1 validation error detected: Value 'x' at 'inferenceId' failed to satisfy constraint"
    stubber.add_client_error("invoke_endpoint", service_error_code="ValidationError", service_message=message)
    with pytest.raises(RequestRejected, match="'inferenceId'"):
        EndpointClient(ENDPOINT, runtime=runtime).predict([[1]], inference_id="x")


def test_for_model_calls_the_endpoint_of_the_model_in_its_stage() -> None:
    assert EndpointClient.for_model("churn", "prod", runtime=RecordingRuntime()).endpoint_name == (
        "headrace-prod-churn"
    )


def test_predictions_and_the_answering_variant_are_read_from_the_answer(
    stubbed: tuple[Any, Stubber],
) -> None:
    runtime, stubber = stubbed
    stubber.add_response("invoke_endpoint", answer({"predictions": [0.25, 0.75]}, variant="AllTraffic"))
    result = EndpointClient(ENDPOINT, runtime=runtime).invoke_json([[1], [2]])
    assert (result.predictions, result.variant) == ([0.25, 0.75], "AllTraffic")


def test_multiclass_predictions_are_a_list_of_probabilities_per_row(stubbed: tuple[Any, Stubber]) -> None:
    runtime, stubber = stubbed
    stubber.add_response("invoke_endpoint", answer({"predictions": [[0.1, 0.9], [0.6, 0.4]]}))
    assert EndpointClient(ENDPOINT, runtime=runtime).predict([[1], [2]]) == [[0.1, 0.9], [0.6, 0.4]]


def test_a_refused_row_becomes_a_prediction_error_naming_status_row_and_column(
    stubbed: tuple[Any, Stubber],
) -> None:
    runtime, stubber = stubbed
    container = {"error": "'abc' is not a number", "row": 2, "column": "monthly_charges"}
    model_error(stubber, 400, json.dumps(container))
    with pytest.raises(PredictionError) as raised:
        EndpointClient(ENDPOINT, runtime=runtime).predict([[1], [2], [3]])
    error = raised.value
    assert (error.status, error.message, error.row, error.column) == (
        400,
        "'abc' is not a number",
        2,
        "monthly_charges",
    )


def test_a_container_message_that_is_not_json_is_kept_as_it_is(stubbed: tuple[Any, Stubber]) -> None:
    runtime, stubber = stubbed
    model_error(stubber, 502, "Bad Gateway")
    with pytest.raises(PredictionError) as raised:
        EndpointClient(ENDPOINT, runtime=runtime).predict([[1]])
    assert (raised.value.status, raised.value.message, raised.value.row) == (502, "Bad Gateway", None)


def test_a_model_error_without_a_container_answer_carries_sagemakers_message(
    stubbed: tuple[Any, Stubber],
) -> None:
    runtime, stubber = stubbed
    model_error(stubber, None, None, message="Your invocation timed out while waiting for a response")
    with pytest.raises(PredictionError) as raised:
        EndpointClient(ENDPOINT, runtime=runtime).predict([[1]])
    assert raised.value.status is None
    assert "timed out" in raised.value.message


def test_an_unknown_endpoint_becomes_endpoint_not_found_saying_how_one_appears(
    stubbed: tuple[Any, Stubber],
) -> None:
    runtime, stubber = stubbed
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ValidationError",
        service_message=f"Endpoint {ENDPOINT} of account 123456789012 not found.",
        http_status_code=400,
    )
    with pytest.raises(EndpointNotFound, match="headrace approve"):
        EndpointClient(ENDPOINT, runtime=runtime).predict([[1]])


def test_an_unknown_variant_is_a_rejected_request_not_a_missing_endpoint(
    stubbed: tuple[Any, Stubber],
) -> None:
    runtime, stubber = stubbed
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ValidationError",
        service_message="Variant Canary does not exist on the endpoint.",
        http_status_code=400,
    )
    with pytest.raises(RequestRejected, match="Variant Canary"):
        EndpointClient(ENDPOINT, runtime=runtime).predict([[1]], target_variant="Canary")


def test_other_aws_errors_are_raised_unchanged(stubbed: tuple[Any, Stubber]) -> None:
    runtime, stubber = stubbed
    stubber.add_client_error(
        "invoke_endpoint", service_error_code="ThrottlingException", http_status_code=400
    )
    with pytest.raises(runtime.exceptions.ClientError) as raised:
        EndpointClient(ENDPOINT, runtime=runtime).predict([[1]])
    assert not isinstance(raised.value, ServingError)
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"


def test_an_answer_without_predictions_is_a_serving_error() -> None:
    runtime = RecordingRuntime({"scores": [0.5]})
    with pytest.raises(ServingError, match="predictions"):
        EndpointClient(ENDPOINT, runtime=runtime).predict([[1]])


def test_a_request_over_invoke_endpoints_limit_is_refused_before_it_is_sent() -> None:
    runtime = RecordingRuntime()
    with pytest.raises(PayloadTooLarge, match="smaller batches"):
        EndpointClient(ENDPOINT, runtime=runtime).predict_csv("1\n" * (MAX_PAYLOAD_BYTES // 2 + 1))
    assert runtime.requests == []


def test_no_rows_are_refused_before_anything_is_sent() -> None:
    runtime = RecordingRuntime()
    with pytest.raises(ValueError, match="no rows"):
        EndpointClient(ENDPOINT, runtime=runtime).predict([])
    assert runtime.requests == []


def test_csv_text_given_to_predict_points_to_predict_csv() -> None:
    with pytest.raises(TypeError, match="predict_csv"):
        EndpointClient(ENDPOINT, runtime=RecordingRuntime()).predict(["3,49.5,north"])
