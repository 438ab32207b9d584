r"""InvokeEndpoint's InferenceId, checked as SageMaker checks it: 1 to 64 characters matching
\A\S[\p{Print}]*\z, Java's \p{Print} being printable ASCII
(https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html; botocore's
sagemaker-runtime model says the same). botocore refuses an empty one before sending; the rest is the
service's to refuse, with a ValidationError."""

from __future__ import annotations

from headrace.aws.inference_id import INFERENCE_ID_MAX, INFERENCE_ID_PATTERN, matches_pattern
from headrace.local.sagemaker.fleets import HostingError


def check_inference_id(value: str) -> None:
    """HostingError (answered as a ValidationError) for an InferenceId SageMaker refuses, in the words of
    AWS's parameter validation."""
    if not value:
        constraint = "Member must have length greater than or equal to 1"
    elif len(value) > INFERENCE_ID_MAX:
        constraint = f"Member must have length less than or equal to {INFERENCE_ID_MAX}"
    elif not matches_pattern(value):
        constraint = f"Member must satisfy regular expression pattern: {INFERENCE_ID_PATTERN}"
    else:
        return
    raise HostingError(
        f"1 validation error detected: Value {value!r} at 'inferenceId' failed to satisfy constraint: "
        f"{constraint}"
    )
