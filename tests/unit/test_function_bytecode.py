"""A function package's bytecode (stacks/bytecode.py): written for every module, checked by source hash, and
used by an interpreter that cannot write bytecode even after the deployment zip reset every file's time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from headrace.config import load_models
from headrace.layers import LAMBDA_PYTHON_VERSION
from stacks.assets import FUNCTIONS_DIR, stage_function_asset
from stacks.bytecode import compile_for_lambda

# PEP 552: the flags word after the magic number; bit 0 hash-based, bit 1 check the source.
CHECKED_HASH = 0b11
ZIP_EPOCH = 315_532_800  # 1980-01-01, the earliest time a zip entry can hold


@pytest.fixture(scope="module")
def asset(tmp_path_factory: pytest.TempPathFactory, repo_root: Path) -> Path:
    staged = stage_function_asset(
        FUNCTIONS_DIR / "ingest", load_models(repo_root / "models"), tmp_path_factory.mktemp("ingest")
    )
    compile_for_lambda(staged)  # as the synth does when it runs on Lambda's Python
    return staged


def test_every_module_has_hash_checked_bytecode_for_this_python(asset: Path) -> None:
    tag = sys.implementation.cache_tag
    sources = sorted(asset.rglob("*.py"))
    assert len(sources) > 50
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.{tag}.pyc"
        flags = int.from_bytes(pyc.read_bytes()[4:8], "little")
        assert flags == CHECKED_HASH, source


def test_the_bytecode_is_used_after_the_zip_reset_the_sources_times(asset: Path) -> None:
    for source in asset.rglob("*.py"):
        os.utime(source, (ZIP_EPOCH, ZIP_EPOCH))
    environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # Lambda's read-only /var/task
    environment.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, "-v", "-c", "import handler"],
        cwd=asset,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    ours = [line for line in done.stderr.splitlines() if str(asset) in line]
    loaded = [line for line in ours if line.startswith("# code object from")]
    assert any("headrace/__pycache__/config." in line for line in loaded), ours[:20]
    # `-v` names a .py here for a module compiled from source, which Lambda would do at every cold start.
    assert all(line.endswith(".pyc'") for line in loaded), [line for line in loaded if ".pyc" not in line]


def test_the_synth_ships_bytecode_only_from_lambdas_python(tmp_path: Path, repo_root: Path) -> None:
    staged = stage_function_asset(
        FUNCTIONS_DIR / "retrain", load_models(repo_root / "models"), tmp_path / "a"
    )
    shipped = any(staged.rglob("*.pyc"))
    assert shipped == (sys.version_info[:2] == LAMBDA_PYTHON_VERSION)
