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

from headrace.config import ModelConfig, load_models
from headrace.local.lifeline import EXIT_WITH_ENV

# Every plane a test starts, detached or in a `headrace` subprocess, ends with this pytest process: a killed
# suite leaves no daemon behind (headrace/local/lifeline.py).
os.environ[EXIT_WITH_ENV] = str(os.getpid())
# The planes `headrace local up` records go to this process's own list, not the user's: tests that look a
# plane up ("the last one started") see only their own, whatever runs beside them.
os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="headrace-state-")

# `make test` runs on every core (pytest-xdist, --dist loadgroup). What is costly to set up and shared across
# modules stays on one worker: a test using one of these session fixtures joins its group; every other test
# stays with its module, so a module's own plane or synth is set up once.
SHARED_GROUPS = {
    "plane": "e2e-plane",
    "two_stage_plane": "e2e-two-stages",
}
# The synthesized app's variants (tests/support/synth.py): some modules reach them by name at run time
# (`stage_variant`), which no fixture closure shows, so the whole directory is one group.
SYNTH_DIRECTORY = "infrastructure"


def xdist_group(item: pytest.Item) -> str:
    """The group `item` runs in: a shared session fixture's, else the synthesized templates', else its
    module's."""
    definitions = getattr(item, "_fixtureinfo", None)
    for name, group in SHARED_GROUPS.items():
        defs = definitions.name2fixturedefs.get(name, ()) if definitions else ()
        if name in getattr(item, "fixturenames", ()) and defs and defs[-1].scope == "session":
            return group
    path = Path(str(item.path)).relative_to(REPO / "tests")
    return "synth" if path.parts[0] == SYNTH_DIRECTORY else str(path)


# Before xdist's own hook, which reads the marks into each test's id on the workers.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group(xdist_group(item)))


REPO = Path(__file__).resolve().parent.parent
EVENTS = REPO / "events"


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
