"""Lambda code assets staged at synth time: no pip, no Docker, just files.

A function's asset is its handler folder plus the shared domain package and the validated model configs;
its third-party dependencies come from the AWS-managed layers (headrace/layers.py). What the tests import
is what gets deployed.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import headrace
from headrace.config import ModelConfig, models_document

PACKAGE_DIR = Path(headrace.__file__).resolve().parent
FUNCTIONS_DIR = PACKAGE_DIR.parent / "functions"
MODELS_DOCUMENT = "models.json"
# Edges that never run inside Lambda; they import moto, typer and rich, which no layer provides.
EDGE_SUBPACKAGES = frozenset({"cli", "local"})
_CACHES = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".mypy_cache", ".pytest_cache")


def _package_ignore(directory: str, names: list[str]) -> set[str]:
    ignored = set(_CACHES(directory, names))
    if Path(directory).resolve() == PACKAGE_DIR:
        ignored |= EDGE_SUBPACKAGES & set(names)
    return ignored


def stage_function_asset(source: Path, models: Sequence[ModelConfig], destination: Path) -> Path:
    """Lay out one function's deployment package in `destination` (replaced if present) and return it.

    Layout: the handler folder's files at the root (Lambda's handler `handler.handler`), `headrace/` without
    its edges, and `models.json` (the configs as JSON: the Lambda runtime has no YAML parser). Only content
    decides CDK's asset hash, so identical sources give an identical hash wherever they are staged.
    """
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(source, destination, ignore=_CACHES)
    shutil.copytree(PACKAGE_DIR, destination / "headrace", ignore=_package_ignore)
    (destination / MODELS_DOCUMENT).write_text(models_document(list(models)), encoding="utf-8")
    return destination
