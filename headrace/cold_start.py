"""Inside Lambda, the cyclic garbage collector pauses while a handler's modules import, and what they built
is then frozen out of later collections.

Imports allocate long-lived objects only (modules, classes, pydantic schemas, botocore models), so each
collection during them walks a growing heap and frees nothing: about 35 ms of ingest's import, measured
by bench/cold_start.py. `gc.freeze` then moves those objects to the permanent generation, so the first
collection after the imports does not walk them all instead
(https://docs.python.org/3/library/gc.html#gc.freeze).

Only where Lambda's runtime sets AWS_LAMBDA_FUNCTION_NAME ("Defined runtime environment variables",
https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html): tests and the local plane import
handlers into long-lived processes, whose garbage must stay collectable.

A handler imports this module before any other (it is light: `headrace/__init__.py` holds a version) and
calls `imported()` as its last statement.
"""

from __future__ import annotations

import gc
import os

_paused = "AWS_LAMBDA_FUNCTION_NAME" in os.environ and gc.isenabled()
if _paused:
    gc.disable()


def imported() -> None:
    """The handler module is loaded: freeze what its imports built and let the collector run again."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
