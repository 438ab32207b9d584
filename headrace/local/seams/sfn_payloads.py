"""Step Functions' payload quota, as the service enforces it, on moto's ASL interpreter.

Step Functions refuses more than 256 KiB (UTF-8) as a task's result, a state's output, or a state's input
after Parameters: the state fails with `States.DataLimitExceeded`
(https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html, "Maximum input or output size for
a task, state, or execution"), and that error is terminal: "States.ALL ... can't catch the
States.DataLimitExceeded terminal error" (https://docs.aws.amazon.com/step-functions/latest/dg/
concepts-error-handling.html), so a Retry or Catch on States.ALL does not see it, only one that names it.

moto 5.2.5 checks results and outputs, but refuses exactly 256 KiB (and measures a string without its
quotes), never checks the input after Parameters, and lets States.ALL retry and catch the error: the
pipeline's catch-alls (stacks/training.py, deploy.py) would turn what fails an execution on AWS into a
handled failure locally. `payloads_limited()` fixes the three.

Left as moto has it: a States.* error that ends a Parallel branch or a Map iteration becomes States.Runtime
(moto wraps it in a CustomErrorName, which refuses the prefix); the execution still fails.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, Final, cast

import moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service as task_service  # noqa: E501
import moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda as task_lambda
import moto.stepfunctions.parser.asl.component.state.state as state
from moto.stepfunctions.parser.api import ExecutionFailedEventDetails, HistoryEventType
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent,
    FailureEventException,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.component.common.parargs import Parameters
from moto.stepfunctions.parser.asl.eval.environment import Environment
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

MAX_PAYLOAD_BYTES: Final = 256 * 1024
DATA_LIMIT_EXCEEDED: Final = StatesErrorNameType.StatesStatesDataLimitExceeded
# The modules that imported moto's `is_within_size_quota` by name: each holds its own reference.
_QUOTA_USERS: Final[tuple[ModuleType, ...]] = (state, task_lambda, task_service)


def within_quota(value: Any) -> bool:
    """At most 256 KiB as compact UTF-8 JSON (a string value with its quotes: moto counts it without)."""
    return len(to_json_str(value, separators=(",", ":")).encode("utf-8")) <= MAX_PAYLOAD_BYTES


def _error_equals(original: Callable[[ErrorEqualsDecl, Environment], None]) -> Callable[..., None]:
    def evaluate(self: ErrorEqualsDecl, env: Environment) -> None:
        error_name = env.stack[-1]  # popped by the original, which pushes whether it matches
        original(self, env)
        if env.stack[-1] and getattr(error_name, "error_name", None) == DATA_LIMIT_EXCEEDED.to_name():
            env.stack[-1] = error_name in self.error_names  # named explicitly, not through States.ALL

    return evaluate


def _parameters(original: Callable[[Parameters, Environment], None]) -> Callable[..., None]:
    def evaluate(self: Parameters, env: Environment) -> None:
        original(self, env)
        if within_quota(env.stack[-1]):
            return
        entered = env.states.context_object.context_object_data.get("State")
        name = entered["Name"] if entered else ""
        cause = (
            f"The state/task '{name}' has an input with a size exceeding the maximum number of bytes "
            "service limit after Parameters processing."
        )
        raise FailureEventException(
            failure_event=FailureEvent(
                env=env,
                error_name=StatesErrorName(typ=DATA_LIMIT_EXCEEDED),
                event_type=HistoryEventType.TaskFailed,
                event_details=cast(
                    EventDetails,
                    {
                        "executionFailedEventDetails": ExecutionFailedEventDetails(
                            error=DATA_LIMIT_EXCEEDED.to_name(), cause=cause
                        )
                    },
                ),
            )
        )

    return evaluate


@contextlib.contextmanager
def payloads_limited() -> Iterator[None]:
    """Patch moto's interpreter for as long as the block runs; the originals are restored afterwards."""
    original_quota = {module: module.is_within_size_quota for module in _QUOTA_USERS}
    original_error_equals = ErrorEqualsDecl._eval_body
    original_parameters = Parameters._eval_body
    for module in _QUOTA_USERS:
        module.is_within_size_quota = within_quota  # type: ignore[attr-defined]
    ErrorEqualsDecl._eval_body = _error_equals(original_error_equals)  # type: ignore[method-assign]
    Parameters._eval_body = _parameters(original_parameters)  # type: ignore[method-assign]
    try:
        yield
    finally:
        for module, quota in original_quota.items():
            module.is_within_size_quota = quota  # type: ignore[attr-defined]
        ErrorEqualsDecl._eval_body = original_error_equals  # type: ignore[method-assign]
        Parameters._eval_body = original_parameters  # type: ignore[method-assign]
