"""How a training run fails: one paragraph in `output/failure` that says what is wrong, and exit status 1.

SageMaker shows the file's text as the job's FailureReason (at most 1024 characters); the local plane does
the same. The reason names the thing to fix: a hyperparameter, a channel, a column, XGBoost's own error,
or the model's own code (`headrace.usercode.UserCodeError`: the model, the function and the problem).
"""

from __future__ import annotations

import re
import sys
import traceback
from pathlib import Path
from typing import Final

from headrace.training_job import HyperparameterError
from headrace.usercode import UserCodeError

# DescribeTrainingJob's FailureReason holds at most 1024 characters.
REASON_MAX: Final = 1024


class TrainingFailure(Exception):
    """An expected failure: the message is the paragraph written to `output/failure`."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _xgboost_message(exc: BaseException) -> str:
    # XGBoostError messages carry a C++ stack trace after the useful first lines.
    text = str(exc).split("Stack trace:", 1)[0]
    return re.sub(r"\[\d\d:\d\d:\d\d\] ", "", text).strip()


def reason_for(exc: BaseException) -> str:
    """The paragraph that explains `exc` to whoever reads the job's FailureReason."""
    if isinstance(exc, TrainingFailure | UserCodeError):
        return exc.reason
    if isinstance(exc, HyperparameterError):
        return f"Bad hyperparameter '{exc.name}': {exc.problem}."
    if type(exc).__name__ == "XGBoostError":
        return f"XGBoost error: {_xgboost_message(exc)}"
    return f"Unexpected error in the trainer: {type(exc).__name__}: {exc}"


def one_paragraph(reason: str) -> str:
    flat = " ".join(reason.split())
    return flat if len(flat) <= REASON_MAX else flat[: REASON_MAX - 3] + "..."


def write_failure(failure_file: Path, exc: BaseException) -> int:
    """Record `exc` as the run's failure reason; returns the process exit status (1)."""
    reason = one_paragraph(reason_for(exc))
    if isinstance(exc, UserCodeError) and exc.__cause__ is not None:
        # The user's own traceback, for the log (the reason names only the innermost line of their files).
        traceback.print_exception(exc.__cause__, file=sys.stderr)
    elif not isinstance(exc, TrainingFailure | HyperparameterError | UserCodeError):
        traceback.print_exception(exc, file=sys.stderr)
    print(f"training failed: {reason}", file=sys.stderr, flush=True)
    failure_file.parent.mkdir(parents=True, exist_ok=True)
    failure_file.write_text(reason + "\n", encoding="utf-8")
    return 1
