"""Fixtures shared by every test layer."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from headrace.config import ModelConfig, load_models
from headrace.local.lifeline import EXIT_WITH_ENV

# Every plane a test starts, detached or in a `headrace` subprocess, ends with this pytest process: a killed
# suite leaves no daemon behind (headrace/local/lifeline.py).
os.environ[EXIT_WITH_ENV] = str(os.getpid())

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
