"""headrace/cold_start.py: inside Lambda the collector runs no collection while a handler imports, and is on
again, with the imports' objects frozen, once the handler is loaded; elsewhere nothing changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stacks.assets import FUNCTIONS_DIR

# Counts the collections that start while the handler's imports run: after headrace.cold_start loaded,
# before anything was frozen (the ones right after the freeze find an empty young generation).
PROBE = """
import gc, json, sys
during = []
def seen(phase, info):
    if phase == "start" and "headrace.cold_start" in sys.modules and gc.get_freeze_count() == 0:
        during.append(info["generation"])
gc.callbacks.append(seen)
import handler
gc.callbacks.remove(seen)
print(json.dumps({"collections": len(during), "enabled": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


def _import(folder: str, repo_root: Path, *, in_lambda: bool) -> dict[str, int]:
    environment = {k: v for k, v in os.environ.items() if k != "AWS_LAMBDA_FUNCTION_NAME"}
    environment["PYTHONPATH"] = str(repo_root)
    if in_lambda:
        environment["AWS_LAMBDA_FUNCTION_NAME"] = f"headrace-dev-{folder}"
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=FUNCTIONS_DIR / folder,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, int] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("folder", ["ingest", "drift_finish"])
def test_in_lambda_no_collection_runs_during_the_imports_and_the_collector_is_back_after(
    folder: str, repo_root: Path
) -> None:
    result = _import(folder, repo_root, in_lambda=True)

    assert result["collections"] == 0
    assert result["enabled"]
    assert result["frozen"] > 10_000  # the modules, classes and schemas the imports built


def test_outside_lambda_the_collector_is_left_alone(repo_root: Path) -> None:
    result = _import("ingest", repo_root, in_lambda=False)

    assert result["collections"] > 0
    assert result["enabled"]
    assert result["frozen"] == 0


def test_every_handler_pauses_the_collector_first_and_resumes_it_last() -> None:
    for handler in sorted(FUNCTIONS_DIR.glob("*/handler.py")):
        statements = [
            line.split("  #")[0]
            for line in handler.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith((" ", "#", '"', ")", "]", "}"))
        ]
        imports = [line for line in statements if line.startswith(("import ", "from "))]
        assert imports[:2] == ["from __future__ import annotations", "from headrace import cold_start"], (
            handler
        )
        assert statements[-1] == "cold_start.imported()", handler
