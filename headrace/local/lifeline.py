"""A plane that ends with the process that asked for it: HEADRACE_LOCAL_EXIT_WITH names a pid to outlive no
longer than. The test suite sets it to its own pid, so a killed pytest (SIGKILL, a CI timeout) does not leave
its detached planes running; `headrace local up` without it keeps running until `local down`, as documented.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import threading

from headrace.local.plane_info import process_alive

EXIT_WITH_ENV = "HEADRACE_LOCAL_EXIT_WITH"
POLL_S = 1.0
STDERR_FD = 2  # a plane's log: start_detached sends stdout and stderr to plane.log


def exit_with_owner(stop: threading.Event, poll_s: float | None = None) -> int | None:
    """Set `stop` once the pid in HEADRACE_LOCAL_EXIT_WITH has exited; the pid watched, None when unset.

    A value that is not a pid is refused (ValueError) rather than ignored: a plane that was meant to die with
    its owner and silently would not is the leak this exists to prevent."""
    value = os.environ.get(EXIT_WITH_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) <= 0:
        raise ValueError(f"{EXIT_WITH_ENV}={value!r}: expected the pid of the process the plane ends with")
    pid, every = int(value), poll_s or POLL_S

    def watch() -> None:
        while not stop.wait(every):
            if not process_alive(pid):
                stop.set()

    threading.Thread(target=watch, name="exit-with-owner", daemon=True).start()
    return pid


def dump_stacks_on_sigusr1() -> None:
    """`kill -USR1 <plane pid>` writes every thread's stack to the plane's stderr (its log) and lets it run
    on: a plane that will not stop, or a stuck request, says where it is without being killed."""
    faulthandler.register(signal.SIGUSR1, file=STDERR_FD, all_threads=True, chain=False)
