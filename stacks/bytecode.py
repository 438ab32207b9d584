"""A function package's bytecode, compiled at synth for Lambda's Python: its own module (no CDK import), so
the cold-start bench stages assets exactly as the synth does."""

from __future__ import annotations

import compileall
import py_compile
from pathlib import Path


def compile_for_lambda(asset: Path) -> None:
    """Write the bytecode of every module in `asset` with this interpreter, checked by source hash.

    Lambda cannot write bytecode (only /tmp is writable: "Lambda execution environment",
    https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html), so a package shipped
    without it compiles every module it imports at each cold start (~30 ms of ingest's). Hash-based .pyc
    files (PEP 552, https://docs.python.org/3/library/py_compile.html#py_compile.PycInvalidationMode) stay
    valid whatever modification times the deployment zip gives the sources, where the default
    timestamp-based ones would be judged stale and ignored. The bytes depend only on the source and the
    Python version, so the asset hash stays deterministic.
    """
    if not compileall.compile_dir(
        asset, quiet=2, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH, workers=1
    ):
        raise RuntimeError(f"cannot compile the function package in {asset}")
