"""The run's log lines: stdout, flushed at once (SageMaker streams it to CloudWatch Logs as it comes)."""

from __future__ import annotations


def say(message: str) -> None:
    print(message, flush=True)
