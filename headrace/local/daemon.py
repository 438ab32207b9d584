"""Entry point of a local plane running on its own: `python -m headrace.local.daemon --port N ...`.

`headrace local up --detach` starts it in a new session; SIGTERM (`headrace local down`) stops it cleanly,
saving state first when a state directory was given, and so does the exit of the process named by
HEADRACE_LOCAL_EXIT_WITH (headrace/local/lifeline.py).
"""

from __future__ import annotations

import argparse
import faulthandler
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from headrace.local.cloudformation import ProvisionError
from headrace.local.lifeline import STDERR_FD, dump_stacks_on_sigusr1, exit_with_owner
from headrace.local.plane import LocalPlane, parse_stages
from headrace.local.sagemaker.launchers import COMPUTES

STACKS_AFTER_S = 30.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m headrace.local.daemon")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--stage", default="dev", help="one stage: the same as --stages STAGE")
    parser.add_argument("--stages", help="comma-separated stages to provision, the first the default")
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--state-dir", type=Path)
    parser.add_argument("--models-dir", type=Path)
    parser.add_argument("--compute", choices=COMPUTES, default="subprocess")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    dump_stacks_on_sigusr1()
    try:
        stages = parse_stages(args.stages) if args.stages else [args.stage]
        owner = exit_with_owner(stop)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    plane = LocalPlane(
        port=args.port,
        stage=stages[0],
        stages=stages,
        work_dir=args.work_dir,
        state_dir=args.state_dir,
        models_dir=args.models_dir,
        compute=args.compute,
        progress=lambda message: print(message, flush=True),
    )
    try:
        info = plane.start()
    except (ProvisionError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        plane.stop()
        return 2
    print(f"ready on {info.endpoint}" + (f", ending with pid {owner}" if owner else ""), flush=True)
    stop.wait()
    # A stop that takes longer than this writes every thread's stack to the log (stderr): a plane that will
    # not stop says where it is stuck before `local down` gives up and kills it (control.STOP_TIMEOUT_S).
    faulthandler.dump_traceback_later(STACKS_AFTER_S, file=STDERR_FD)
    plane.stop()
    faulthandler.cancel_dump_traceback_later()
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
