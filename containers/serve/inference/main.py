"""`serve`: load the model once, then answer /ping and /invocations until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from typing import Final

from headrace.usercode import UserCodeError
from inference.limits import Limits
from inference.model import Model, model_dir
from inference.quality import PredictionHealth
from inference.server import Invocations, serve_forever
from inference.smoke import SmokeTestFailed, smoke_test

USAGE: Final = (
    "usage: serve  (SageMaker runs `docker run <image> serve`; the model is under HEADRACE_OPT_ML or /opt/ml)"
)
DEFAULT_PORT: Final = 8080


def port(environ: Mapping[str, str] = os.environ) -> int:
    # SageMaker's contract is 8080; SAGEMAKER_BIND_TO_PORT is how it asks for another (multi-container).
    text = environ.get("PORT") or environ.get("SAGEMAKER_BIND_TO_PORT") or str(DEFAULT_PORT)
    if not text.isdigit() or not 0 < int(text) < 65_536:
        raise ValueError(f"PORT / SAGEMAKER_BIND_TO_PORT must be a TCP port number, got {text!r}")
    return int(text)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["serve"]:
        args = args[1:]
    if args:
        print(USAGE, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    directory = model_dir()
    try:
        model = Model.load(directory)
    except UserCodeError as exc:
        print(f"cannot load the model from {directory}: {exc.reason}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"cannot load the model from {directory}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    # Before listening: a model that fails it never answers /ping, so its endpoint never goes InService.
    try:
        checked = smoke_test(model, directory)
    except SmokeTestFailed as exc:
        print(exc.reason, file=sys.stderr)
        return 1
    if checked:
        print(f"smoke test: {checked} recorded test rows scored as in training", flush=True)
    # The model and the libraries stay for the process's life: out of the collector's sight, a full
    # collection (which holds the GIL) walks only what requests make.
    gc.freeze()
    host = os.environ.get("HEADRACE_SERVE_HOST", "0.0.0.0")
    try:
        listen_port = port()
        limits = Limits.from_environ()
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if model.runs_user_code:
        # Every user predict() on the one worker thread: never two at once (user code need not be thread
        # safe), and /ping keeps answering while a slow one runs.
        limits = dataclasses.replace(limits, off_loop_bytes=0)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        asyncio.run(
            serve_forever(
                Invocations(model, PredictionHealth.from_environ(model.objective)),
                host,
                listen_port,
                limits=limits,
            )
        )
    return 0
