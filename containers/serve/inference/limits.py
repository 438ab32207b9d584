"""The server's limits: request sizes (SageMaker's) and the timeouts that free a stalled connection."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

# SageMaker real-time endpoints accept request bodies up to 6 MB (InvokeEndpoint's limit).
MAX_BODY: Final = 6 * 1024 * 1024
MAX_HEAD: Final = 64 * 1024
# In a batch transform SageMaker sets SAGEMAKER_BATCH=true and SAGEMAKER_MAX_PAYLOAD_IN_MB, the largest
# mini-batch it sends (https://docs.aws.amazon.com/sagemaker/latest/dg/your-algorithms-batch-code.html); the
# job's MaxPayloadInMB "cannot be greater than 100 MB", and 0 asks for chunked bodies of any size, which this
# server does not take: it holds bodies up to that 100 MB
# (https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html).
MB: Final = 1024 * 1024
MAX_BATCH_PAYLOAD_MB: Final = 100
# Bodies larger than this are encoded and scored on a worker thread, so /ping and small requests keep
# answering; smaller ones run inline (a thread hand-off costs more than scoring a few rows).
OFF_LOOP_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class Limits:
    max_body: int = MAX_BODY
    max_head: int = MAX_HEAD
    off_loop_bytes: int = OFF_LOOP_BYTES
    # A keep-alive connection with no request: longer than the 60 s idle timeout load balancers and
    # SageMaker's front end commonly use, so the caller closes first and never races our close.
    idle_s: float = 65.0
    # From a request's first byte to the end of its head.
    head_s: float = 10.0
    # The longest wait for the next bytes of a body.
    read_s: float = 10.0
    # From the end of the head to the end of the body: a slow drip cannot hold a buffer for ever
    # (InvokeEndpoint itself gives up after 60 s).
    body_s: float = 60.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Limits:
        """The timeouts may be shortened (tests) or lengthened; ValueError for a value that is not > 0. In a
        batch transform, bodies up to the job's MaxPayloadInMB."""
        default = cls()
        return cls(
            max_body=_max_body(environ),
            idle_s=_seconds(environ, "HEADRACE_SERVE_IDLE_S", default.idle_s),
            head_s=_seconds(environ, "HEADRACE_SERVE_HEAD_S", default.head_s),
            read_s=_seconds(environ, "HEADRACE_SERVE_READ_S", default.read_s),
            body_s=_seconds(environ, "HEADRACE_SERVE_BODY_S", default.body_s),
        )


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    text = environ.get(name)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 86_400:
        raise ValueError(f"{name} must be a number of seconds above 0 (and under a day), got {text!r}")
    return value


def _max_body(environ: Mapping[str, str]) -> int:
    if environ.get("SAGEMAKER_BATCH", "").lower() != "true" or "SAGEMAKER_MAX_PAYLOAD_IN_MB" not in environ:
        return MAX_BODY
    text = environ["SAGEMAKER_MAX_PAYLOAD_IN_MB"]
    try:
        megabytes = int(text)
    except ValueError:
        megabytes = -1
    if not 0 <= megabytes <= MAX_BATCH_PAYLOAD_MB:
        raise ValueError(
            f"SAGEMAKER_MAX_PAYLOAD_IN_MB must be 0 to {MAX_BATCH_PAYLOAD_MB} (MB), got {text!r}"
        )
    return (megabytes or MAX_BATCH_PAYLOAD_MB) * MB
