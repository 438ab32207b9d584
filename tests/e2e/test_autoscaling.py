"""Autoscaling on the local plane, end to end: the deploy workflow registers the variant with Application
Auto Scaling; sustained traffic scales it out to its max (DescribeEndpoint's CurrentInstanceCount and the
plane's serve processes), never past it; a canary rollout while scaled out loses no call (the workflow
deregisters the target before UpdateEndpoint and registers the new fleet after, as
https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-scaling-update.html asks); idle traffic scales it
back in once the scale-in cooldown passed; `headrace endpoints` shows the count and the last activity.

It runs on a plane of its own, with its one model: the session plane's models already take the pipeline
stack near CloudFormation's 500 resources, and the evaluator's metric window is shortened here only."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from headrace.local.control import start_detached, stop_detached
from headrace.serving import autoscaling
from headrace.waiting import wait_for

from .conftest import RunningPlane, write_models
from .test_cli_and_state import headrace
from .test_serving import NAMES, Caller, _csv, _deploy_executions, _deployment, _drop

pytestmark = pytest.mark.e2e

MODEL = "scaler"
ENDPOINT = NAMES.endpoint(MODEL)
KEY = {"ServiceNamespace": autoscaling.NAMESPACE, "ScalableDimension": autoscaling.DIMENSION}
# The evaluator's metric window: Invocations over 5 s, scaled to a minute (headrace/local/autoscaling/).
WINDOW_S = 5
SCALE_IN_COOLDOWN_S = 6


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningPlane]:
    """A plane with one model: the serving tests' `shop` (trained on drop, approved by its gate), starting at
    one instance, up to three, with a target a single caller exceeds many times over and cooldowns of
    seconds."""
    shop = yaml.safe_load((write_models(tmp_path_factory.mktemp("all-models")) / "shop.yaml").read_text())
    shop.pop("batch", None)
    scaler = shop | {"name": MODEL}
    scaler["rollout"] = shop["rollout"] | {
        "instance_count": 1,
        "autoscaling": {
            "min_instances": 1,
            "max_instances": 3,
            "target_invocations_per_instance": 60,
            "scale_in_cooldown_s": SCALE_IN_COOLDOWN_S,
            "scale_out_cooldown_s": 2,
        },
    }
    models = tmp_path_factory.mktemp("scaling-models")
    (models / f"{MODEL}.yaml").write_text(yaml.safe_dump(scaler))
    work_dir = tmp_path_factory.mktemp("scaling-plane")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HEADRACE_LOCAL_SCALING_WINDOW_S", str(WINDOW_S))
        info = start_detached(work_dir=work_dir, models_dir=models)
    try:
        yield RunningPlane(info, models, work_dir)
    finally:
        stop_detached(work_dir)


def _instances(plane: RunningPlane) -> int:
    described = plane.clients.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
    return int(described["ProductionVariants"][0]["CurrentInstanceCount"])


def _serve_processes(plane: RunningPlane) -> int:
    """The plane's live serve processes of the endpoint: those whose /opt/ml lies under its directory."""
    assert plane.work_dir is not None
    root = f"HEADRACE_OPT_ML={(plane.work_dir / 'endpoints' / ENDPOINT).resolve()}/"
    count = 0
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if root.encode() in environ.read_bytes() and "Z" not in _state(environ.parent):
                count += 1
        except OSError:
            continue  # gone, or not ours
    return count


def _state(process: Path) -> str:
    return process.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0]


def _registered(plane: RunningPlane) -> dict[str, Any] | None:
    scaling = plane.clients.client("application-autoscaling")
    found = scaling.describe_scalable_targets(ResourceIds=[autoscaling.resource_id(ENDPOINT)], **KEY)
    targets: list[dict[str, Any]] = found["ScalableTargets"]
    return targets[0] if targets else None


def _activities(plane: RunningPlane) -> list[dict[str, Any]]:
    scaling = plane.clients.client("application-autoscaling")
    found = scaling.describe_scaling_activities(ResourceId=autoscaling.resource_id(ENDPOINT), **KEY)
    return list(found["ScalingActivities"])


def _scaled_to(plane: RunningPlane, count: int, seen: list[int], timeout_s: float = 90) -> None:
    def reached() -> bool | None:
        seen.append(_instances(plane))
        return True if seen[-1] == count else None

    wait_for(reached, f"{ENDPOINT} at {count} instance(s)", timeout_s=timeout_s, interval_s=0.2)


@pytest.fixture(scope="module")
def scaler_v1(plane: RunningPlane) -> pd.DataFrame:
    frame = _drop(plane, MODEL, seed=501)
    execution = _deployment(plane, MODEL, 1)
    assert execution["status"] == "SUCCEEDED", execution
    return frame


def test_traffic_scales_the_variant_out_and_in_and_a_canary_during_it_loses_no_call(
    plane: RunningPlane, scaler_v1: pd.DataFrame
) -> None:
    target = _registered(plane)
    assert target is not None, "the deploy workflow registered no scalable target"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 3)
    assert (_instances(plane), _serve_processes(plane)) == (1, 1)
    sagemaker = plane.clients.client("sagemaker")
    seen: list[int] = []
    body = _csv(scaler_v1.head(1), plane.models[MODEL])
    with Caller.running(plane, ENDPOINT, body) as caller:
        # Sustained traffic: far above 60 invocations per instance per minute, so out to the max of 3.
        _scaled_to(plane, 3, seen)
        assert _serve_processes(plane) == 3
        time.sleep(3)  # more than the scale-out cooldown: still 3, the max holds
        assert _instances(plane) == 3

        # A new version rolls out while the variant is scaled out and traffic keeps coming.
        _drop(plane, MODEL, seed=502)
        registered_during: list[bool] = []

        def updating() -> bool:
            described = sagemaker.describe_endpoint(EndpointName=ENDPOINT)
            seen.extend(v.get("CurrentInstanceCount", 0) for v in described["ProductionVariants"])
            pending = bool(described.get("PendingDeploymentSummary"))
            return described["EndpointStatus"] == "Updating" and pending

        def rolled_out() -> bool | None:
            # A registration read counts only between two reads of the update in progress: read after one
            # alone, it may see the target the workflow registers again once the update has ended.
            if updating():
                registered = _registered(plane) is not None
                if updating():
                    registered_during.append(registered)
            executions = _deploy_executions(plane, MODEL)
            return True if len(executions) >= 2 and executions[0]["status"] != "RUNNING" else None

        wait_for(rolled_out, "v2's rollout to end", timeout_s=300, interval_s=0.2)
        execution = _deployment(plane, MODEL, 2)
        assert execution["status"] == "SUCCEEDED", execution
        assert sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"].startswith(
            f"headrace-dev-{MODEL}-v2-"
        )
        assert registered_during and not any(registered_during), "scaling was not suspended for the rollout"
        assert _registered(plane) is not None, "the new fleet was not registered again"
        # The new fleet starts at instance_count (1) and, registered again, scales out with the traffic.
        _scaled_to(plane, 3, seen)
    assert caller.errors == [], caller.errors[:5]
    assert len(caller.answers) > 100
    assert max(seen) == 3, f"the variant went past its max: {max(seen)}"

    # Idle: back to the minimum, once the scale-in cooldown since the last scale-out passed.
    _scaled_to(plane, 1, seen, timeout_s=60)
    assert wait_for(lambda: _serve_processes(plane) == 1 or None, "the retired processes to exit", 30)
    # Newest first: the scale-ins since the last scale-out to 3 (one step or several, as the window's rate
    # falls), each a cooldown after the activity before it, down to 1. The activities' own start times, not
    # when this test saw the counts: polling saw the scale-out to 3 up to seconds late on a loaded machine.
    activities = _activities(plane)
    assert {a["StatusCode"] for a in activities} == {"Successful"}
    last_out = next(i for i, a in enumerate(activities) if a["Description"].endswith(" to 3."))
    since = activities[: last_out + 1]
    counts = [int(a["Description"].removesuffix(".").rsplit(" ", 1)[1]) for a in since]
    assert counts[0] == 1 and counts == sorted(counts) and len(set(counts)) == len(counts), counts
    for later, earlier in itertools.pairwise(since):
        assert (later["StartTime"] - earlier["StartTime"]).total_seconds() >= SCALE_IN_COOLDOWN_S

    listed = headrace("endpoints", "--json", "--models-dir", str(plane.models_dir), plane=plane)
    assert listed.returncode == 0, listed.stderr
    view = next(e for e in json.loads(listed.stdout) if e["model"] == MODEL)
    assert view["variants"][0]["instances"] == 1
    assert view["scaling"]["min_instances"] == 1 and view["scaling"]["max_instances"] == 3
    assert view["scaling"]["last_activity"] == "Setting desired instance count to 1."
    assert view["scaling"]["last_activity_status"] == "Successful"
    table = headrace("endpoints", "--models-dir", str(plane.models_dir), plane=plane)
    assert table.returncode == 0 and "1-3" in table.stdout, table.stdout
