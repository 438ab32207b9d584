"""Poll until something is true, with a deadline: the only way Headrace waits for asynchronous work."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    pass


def wait_for(check: Callable[[], T | None], what: str, timeout_s: float = 60.0, interval_s: float = 0.1) -> T:
    """Call `check` until it returns something truthy and return that; raise WaitTimeout naming `what`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)
