r"""InvokeEndpoint's InferenceId: 1 to 64 characters matching \A\S[\p{Print}]*\z, Java's \p{Print} being
printable ASCII (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_runtime_InvokeEndpoint.html;
botocore's sagemaker-runtime model says the same). One rule for the local plane, which refuses such a call,
and for ground-truth files, whose ids name such calls."""

from __future__ import annotations

import re

INFERENCE_ID_MAX = 64
INFERENCE_ID_PATTERN = r"\A\S[\p{Print}]*\z"
# The same pattern in Python's terms: Java's \S excludes [ \t\n\x0B\f\r] only.
_INFERENCE_ID = re.compile(r"[^ \t\n\x0b\f\r][\x20-\x7e]*")


def matches_pattern(value: str) -> bool:
    return _INFERENCE_ID.fullmatch(value) is not None


def is_inference_id(value: str) -> bool:
    return 1 <= len(value) <= INFERENCE_ID_MAX and matches_pattern(value)
