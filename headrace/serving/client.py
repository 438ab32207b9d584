"""A small typed client for a model's endpoint: rows in, predictions out, the container's refusals as errors.

    client = EndpointClient.for_model("churn", stage="dev")
    client.predict([{"tenure_months": 3, "contract": "month-to-month", "region": "north"}])  # [0.81]
    client.predict_csv("3,49.5,,month-to-month,card,4,north,false\\n")                        # [0.81]

boto3's `sagemaker-runtime` underneath, so AWS_ENDPOINT_URL points it at the local plane. The request and
answer formats are the serving container's (containers/serve/CONTRACT.md).

Every call carries an InferenceId, the caller's or a fresh uuid4: SageMaker writes it into the captured
record (`eventMetadata.inferenceId`), and ground truth sent later for that id joins the prediction. The
synchronous InvokeEndpoint does not answer with an id, so the one sent (`PredictionResult.inference_id`) is
the caller's only handle on the inference.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

import boto3
from botocore.exceptions import ClientError
from pydantic import BaseModel, ValidationError

from headrace.naming import DEFAULT_STAGE, Names

# InvokeEndpoint's payload limit, which the container enforces too (CONTRACT.md: 6,291,456 bytes).
MAX_PAYLOAD_BYTES: Final = 6 * 1024 * 1024
JSON: Final = "application/json"
CSV: Final = "text/csv"

Predictions = list[float] | list[list[float]]
Rows = Sequence[Sequence[Any]] | Sequence[Mapping[str, Any]]


class ServingError(RuntimeError):
    """Anything the endpoint refused; the subclasses say what."""


class EndpointNotFound(ServingError):
    def __init__(self, endpoint_name: str) -> None:
        super().__init__(
            f"endpoint {endpoint_name} does not exist: a model's endpoint appears when a version is "
            "approved (`headrace approve MODEL vN`); `headrace endpoints` shows what is deployed, "
            "and --stage picks another stage"
        )
        self.endpoint_name = endpoint_name


class RequestRejected(ServingError):
    """SageMaker refused the request before it reached a container (an unknown variant, a bad header)."""


class PayloadTooLarge(ValueError):
    """The request is over InvokeEndpoint's limit: nothing was sent."""


class PredictionError(ServingError):
    """The container answered 4xx or 5xx (SageMaker's ModelError): its status and message, row and column
    where the container named them (rows count from 0)."""

    def __init__(
        self,
        endpoint_name: str,
        status: int | None,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
        log_stream_arn: str | None = None,
    ) -> None:
        where = ", ".join(
            part
            for part in (
                f"row {row}" if row is not None else "",
                f"column {column}" if column else "",
            )
            if part
        )
        status_text = f" ({status})" if status is not None else ""
        super().__init__(
            f"{endpoint_name} refused the request{status_text}: {message}" + (f" [{where}]" if where else "")
        )
        self.endpoint_name = endpoint_name
        self.status = status
        self.message = message
        self.row = row
        self.column = column
        self.log_stream_arn = log_stream_arn


class ContainerError(BaseModel):
    """The body of every error the serving container answers (CONTRACT.md, Errors)."""

    error: str
    row: int | None = None
    column: str | None = None


class PredictionResult(BaseModel):
    endpoint_name: str
    # The InferenceId the call carried: the key ground truth for these rows is sent under.
    inference_id: str
    # InvokedProductionVariant: which fleet answered (during a blue/green rollout, old or new).
    variant: str | None = None
    predictions: Predictions


class EndpointClient:
    def __init__(self, endpoint_name: str, *, runtime: Any = None) -> None:
        self.endpoint_name = endpoint_name
        self._runtime = runtime if runtime is not None else boto3.client("sagemaker-runtime")

    @classmethod
    def for_model(cls, model: str, stage: str = DEFAULT_STAGE, *, runtime: Any = None) -> EndpointClient:
        """The endpoint every version of `model` rolls out behind, in `stage`."""
        return cls(Names(stage).endpoint(model), runtime=runtime)

    def predict(
        self, rows: Rows, *, target_variant: str | None = None, inference_id: str | None = None
    ) -> Predictions:
        """One prediction per row; a row is a sequence of values in feature order or a mapping feature →
        value (an absent feature is missing). A probability, a value, or per-class probabilities per row."""
        return self.invoke_json(rows, target_variant=target_variant, inference_id=inference_id).predictions

    def predict_csv(
        self, text: str, *, target_variant: str | None = None, inference_id: str | None = None
    ) -> Predictions:
        """Rows as CSV: no header, the features in the model's order, one row per line."""
        return self.invoke(
            text.encode(), CSV, target_variant=target_variant, inference_id=inference_id
        ).predictions

    def invoke_json(
        self, rows: Rows, *, target_variant: str | None = None, inference_id: str | None = None
    ) -> PredictionResult:
        body = json.dumps({"instances": _instances(rows)}, default=_plain).encode()
        return self.invoke(body, JSON, target_variant=target_variant, inference_id=inference_id)

    def invoke(
        self,
        body: bytes,
        content_type: str,
        *,
        target_variant: str | None = None,
        inference_id: str | None = None,
    ) -> PredictionResult:
        """InvokeEndpoint with `body` as `content_type`; the answer is always asked for as JSON. The call
        carries `inference_id`, or a new uuid4 (SageMaker allows 1 to 64 printable ASCII characters and
        refuses others with a ValidationError: RequestRejected here)."""
        if len(body) > MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(
                f"the request is {len(body):,} bytes, over InvokeEndpoint's {MAX_PAYLOAD_BYTES:,}: "
                "send the rows in smaller batches"
            )
        request: dict[str, Any] = {
            "EndpointName": self.endpoint_name,
            "Body": body,
            "ContentType": content_type,
            "Accept": JSON,
            "InferenceId": inference_id if inference_id is not None else str(uuid.uuid4()),
        }
        if target_variant:
            request["TargetVariant"] = target_variant
        try:
            response = self._runtime.invoke_endpoint(**request)
        except ClientError as exc:
            refused = self._refusal(exc)
            if refused is None:
                raise
            raise refused from exc
        answer = response["Body"].read()
        try:
            return PredictionResult(
                endpoint_name=self.endpoint_name,
                inference_id=request["InferenceId"],
                variant=response.get("InvokedProductionVariant"),
                predictions=json.loads(answer)["predictions"],
            )
        except (ValueError, TypeError, KeyError) as exc:
            raise ServingError(
                f"{self.endpoint_name} answered something other than "
                f'{{"predictions": [...]}}: {answer[:200]!r}'
            ) from exc

    def _refusal(self, exc: ClientError) -> ServingError | None:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", ""), str(error.get("Message", ""))
        if code == "ModelError":
            return _prediction_error(self.endpoint_name, exc.response, message)
        if code in ("ValidationError", "ValidationException"):
            # InvokeEndpoint answers an unknown endpoint with "Endpoint <name> of account <id> not found.";
            # the same code covers other refusals (an unknown variant), which keep SageMaker's message.
            if message.startswith(f"Endpoint {self.endpoint_name} ") and "not found" in message:
                return EndpointNotFound(self.endpoint_name)
            return RequestRejected(f"{self.endpoint_name}: {message}")
        return None


def _prediction_error(endpoint_name: str, response: Mapping[str, Any], message: str) -> PredictionError:
    status = response.get("OriginalStatusCode")
    original = response.get("OriginalMessage")
    log_stream = response.get("LogStreamArn")
    if original is None:
        # No container answer to quote (a timeout, a container that died): SageMaker's own message.
        return PredictionError(endpoint_name, status, message, log_stream_arn=log_stream)
    try:
        parsed = ContainerError.model_validate_json(original)
    except ValidationError:
        return PredictionError(endpoint_name, status, str(original), log_stream_arn=log_stream)
    return PredictionError(
        endpoint_name,
        status,
        parsed.error,
        row=parsed.row,
        column=parsed.column,
        log_stream_arn=log_stream,
    )


def _instances(rows: Rows) -> list[Any]:
    if isinstance(rows, str | bytes) or not isinstance(rows, Sequence):
        raise TypeError(
            "rows must be a sequence of rows (a list of lists or of dicts); for CSV text use predict_csv"
        )
    if not rows:
        raise ValueError("no rows to predict")
    instances: list[Any] = []
    for index, row in enumerate(rows):
        if isinstance(row, Mapping):
            instances.append(dict(row))
        elif isinstance(row, Sequence) and not isinstance(row, str | bytes):
            instances.append(list(row))
        else:
            raise TypeError(
                f"row {index} is a {type(row).__name__}: a row is a sequence of values or a mapping "
                "feature → value (for CSV text use predict_csv)"
            )
    return instances


def _plain(value: Any) -> Any:
    """numpy and pandas scalars (what a DataFrame's rows hold) as the Python values JSON knows."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"cannot send a {type(value).__name__} as a feature value")
