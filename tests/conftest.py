"""Fixtures shared by every test layer."""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# The CLI's output is judged as a pipe gets it, at its natural width (headrace/cli/output.py); pytest-xdist's
# workers start with COLUMNS=80, which would cut it. Tests that want a width set their own.
os.environ.pop("COLUMNS", None)

from headrace.config import ModelConfig, load_models
from headrace.local.lifeline import EXIT_WITH_ENV

# Every plane a test starts, detached or in a `headrace` subprocess, ends with this pytest process: a killed
# suite leaves no daemon behind (headrace/local/lifeline.py).
os.environ[EXIT_WITH_ENV] = str(os.getpid())
# The planes `headrace local up` records go to this process's own list, not the user's: tests that look a
# plane up ("the last one started") see only their own, whatever runs beside them.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="headrace-state-")

REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "events"

# `make test` runs on every core (pytest-xdist, `--dist loadscope`, the scopes below). What is costly to set
# up and shared across modules stays on one worker: the modules that use the session's e2e planes form one
# scope per plane, the synthesized app's variants (tests/support/synth.py, some reached by name at run time)
# one for the infrastructure tests; every other module is its own scope, so its module fixtures run once.
# (Not xdist's loadgroup: it renames test ids, which pytest 9.2 no longer lets a plugin do.)
SHARED_PLANES = {"plane": "e2e-plane", "two_stage_plane": "e2e-two-stages"}
SHARED_MODULES = {
    **dict.fromkeys(
        [
            "e2e/test_batch.py",
            "e2e/test_cli_and_state.py",
            "e2e/test_data_arrival.py",
            "e2e/test_ground_truth.py",
            "e2e/test_iam_mutations.py",
            "e2e/test_live_quality.py",
            "e2e/test_monitoring.py",
            "e2e/test_serving.py",
            "e2e/test_training.py",
        ],
        SHARED_PLANES["plane"],
    ),
    **dict.fromkeys(
        ["e2e/test_promotion.py", "e2e/test_smoke.py", "e2e/test_two_stages.py"],
        SHARED_PLANES["two_stage_plane"],
    ),
}
SYNTH_DIRECTORY = "infrastructure/"


def scope_of(nodeid: str) -> str:
    """The scope a test runs in, from its id alone (the controller schedules ids, not collected items)."""
    path = nodeid.split("::")[0].removeprefix("tests/")
    return "synth" if path.startswith(SYNTH_DIRECTORY) else SHARED_MODULES.get(path, path)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return scope_of(nodeid)

    return SharedFixtureScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses a shared plane from a module not listed in SHARED_MODULES would start that plane a
    second time on another worker: refuse to run rather than silently pay for it."""
    for item in items:
        definitions = getattr(item, "_fixtureinfo", None)
        for name, scope in SHARED_PLANES.items():
            defs = definitions.name2fixturedefs.get(name, ()) if definitions else ()
            used = name in getattr(item, "fixturenames", ()) and defs and defs[-1].scope == "session"
            if used and scope_of(item.nodeid) != scope:
                path = item.nodeid.split("::")[0].removeprefix("tests/")
                raise pytest.UsageError(
                    f"{item.nodeid} uses the session fixture {name!r}: add {path!r} to SHARED_MODULES "
                    "in tests/conftest.py, so that one worker runs every test of that plane"
                )


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def example_model() -> ModelConfig:
    return next(m for m in load_models(REPO / "models") if m.name == "churn")


@pytest.fixture
def load_event() -> Callable[..., dict[str, Any]]:
    """A real-shaped sample from events/, deep-copied so a test may edit it."""

    def load(name: str) -> dict[str, Any]:
        return copy.deepcopy(json.loads((EVENTS / f"{name}.json").read_text()))

    return load
