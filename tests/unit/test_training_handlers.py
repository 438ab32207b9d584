"""What the training functions cost to load: only Prepare may import pandas (the 400 ms cold-start budget
leaves no room for it where it is not needed, and those functions get no AWS SDK for pandas layer)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "function", ["evaluate", "register", "run_failed", "deploy_plan", "deploy_verify", "deploy_failed"]
)
def test_the_function_imports_without_pandas_or_numpy(function: str) -> None:
    probe = (
        f"import sys; import functions.{function}.handler; "
        "heavy = sorted(m for m in ('pandas', 'numpy', 'pyarrow') if m in sys.modules); "
        "print(','.join(heavy))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
