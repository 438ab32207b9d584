"""`headrace demo` end to end, as `make demo` runs it, on a plane of its own (its own work dir and port, so
the session's plane is not touched): every step happens, the summary is printed, the report written, and
the plane stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from headrace.local.plane import read_info

from .conftest import REPO

pytestmark = pytest.mark.e2e

# The demo's own budget is 3 minutes on 2 cores; a loaded machine gets some slack.
DEMO_TIMEOUT_S = 420


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    work_dir = tmp_path_factory.mktemp("demo")
    done = subprocess.run(
        [sys.executable, "-m", "headrace.cli.main", "demo", "--work-dir", str(work_dir)],
        env={**os.environ, "COLUMNS": "200"},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT_S,
        check=False,
    )
    return done, work_dir


def _record(work_dir: Path) -> dict[str, Any]:
    return dict(json.loads((work_dir / "record.json").read_text()))


def test_every_step_happens_and_the_plane_is_stopped(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, work_dir = demo
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    record = _record(work_dir)
    assert record["failed_step"] is None
    assert all(step["status"] == "done" for step in record["steps"])
    assert read_info(work_dir) is None
    assert "versions" in done.stdout and "time to…" in done.stdout
    assert "headrace local up --detach" in done.stdout
    print(f"the demo took {record['seconds']:.0f}s")


def test_v2_comes_from_the_drift_alarm_and_v3_is_rolled_back(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, work_dir = demo
    record = _record(work_dir)
    assert [c["status"] for c in record["checks"]] == ["stable", "drifted"]
    v1, v2, v3 = record["versions"]
    assert v2["origin"] == "retrained on the alarm" and v2["gate"] == "passed vs v1"
    assert v1["serving_until"] == v2["serving_from"] is not None
    assert v2["serving_until"] is None
    assert v3["serving_from"] is None and v3["rolled_back_at"] > v3["canary_at"]
    canary, rollback = record["rollouts"]
    assert (canary["version"], canary["outcome"], canary["failed_at"]) == (2, "serving", [])
    # A 10% canary of the demo's 2-instance fleet is one whole instance: half the traffic (SageMaker shifts
    # by instances).
    assert 0.5 in [share for _, share in canary["shares"]]
    assert (rollback["version"], rollback["outcome"]) == (3, "rolled_back")
    assert rollback["failed_at"] and max(rollback["failed_at"]) <= rollback["ended_at"]


def test_the_report_holds_the_charts(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, work_dir = demo
    page = (work_dir / "report.html").read_text()
    # Metrics per version, PSI per feature over the checks, the v2 canary and the v3 rollback.
    assert page.count("<svg") == 4
    assert "https://" not in page and "<script" not in page
