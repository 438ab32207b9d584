"""Every request moto's SageMaker receives is checked as SageMaker checks it, before moto acts on it.

The seam is `SageMakerResponse.call_action` (moto 5.2.5), which every SageMaker API call over HTTP passes
through, whoever sends it: boto3, the AWS CLI, or Step Functions' service integrations (whose parameter
blocks moto's interpreter sends unvalidated). A request that breaks the API model (service_model.py) or one
of SageMaker's documented rules (sagemaker_rules.py) is answered with a 400 ValidationException naming the
member, as SageMaker answers it; moto never sees it.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Iterator
from typing import Any, Final

import botocore.session
from botocore.model import OperationNotFoundError, ServiceModel
from moto.core.responses import ActionResult
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.responses import SageMakerResponse

from headrace.local.seams import sagemaker_rules as rules
from headrace.local.seams.service_model import RequestInvalid, check_request

# The operations with documented rules beyond the API model, and how each is checked.
_RULES: Final[dict[str, Callable[[SageMakerResponse, dict[str, Any]], list[str]]]] = {
    "CreateTrainingJob": lambda _, request: rules.training_job(request),
    "CreateEndpointConfig": lambda _, request: rules.endpoint_config(request),
    "CreateModelPackage": lambda _, request: rules.model_package(request),
    "UpdateEndpoint": lambda response, request: rules.endpoint_update(request, _variants_of(response)),
    "CreateTransformJob": lambda response, request: rules.transform_job(
        request, lambda model: model in response.sagemaker_backend._models
    ),
    "CreateHyperParameterTuningJob": lambda response, request: rules.tuning_job(
        request, lambda name: name in response.sagemaker_backend.hyper_parameter_tuning_jobs
    ),
}


@functools.cache
def _service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("sagemaker")


def _variants_of(response: SageMakerResponse) -> rules.ConfigVariants:
    def variants(name: str) -> list[dict[str, Any]] | None:
        configs = response.sagemaker_backend.endpoint_configs
        if name not in configs:
            return None
        found: list[dict[str, Any]] = configs[name].production_variants or []
        return found

    return variants


def refusal(operation: str, request: dict[str, Any], response: SageMakerResponse) -> str | None:
    """Why SageMaker would refuse `request` for `operation` (None: it would not, as far as we know)."""
    try:
        model = _service_model().operation_model(operation)
    except OperationNotFoundError:
        return None
    try:
        check_request(model, request)
    except RequestInvalid as invalid:
        return str(invalid)
    check = _RULES.get(operation)
    broken = check(response, request) if check else []
    return str(RequestInvalid(broken)) if broken else None


@contextlib.contextmanager
def requests_checked() -> Iterator[None]:
    """Check every SageMaker request for as long as the block runs."""
    original: Callable[..., Any] = SageMakerResponse.call_action

    def call_action(self: SageMakerResponse) -> Any:
        operation = self._get_action()
        try:
            request = json.loads(self.body) if self.body else {}
        except ValueError:
            request = None  # moto answers a body that is not JSON itself
        message = refusal(operation, request, self) if isinstance(request, dict) else None
        if message is None:
            return original(self)
        status, headers, body = self.serialized(ActionResult(ValidationError(message=message)))
        headers["status"] = str(status)
        return status, headers, body

    SageMakerResponse.call_action = call_action  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        SageMakerResponse.call_action = original  # type: ignore[method-assign]
