"""The demo's own model configs: the shipped churn.yaml, with rollouts of seconds instead of minutes.

models/churn.yaml waits a minute at 10% and bakes two (right for production, too slow to watch); the demo
writes a copy with short timings under its work dir and starts its plane with that directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml

from headrace.config import DEFAULT_MODELS_DIR, ModelConfig, load_model_file

MODEL: Final = "churn"
# A canary step the eye can follow and the 5xx alarm fires within (the alarm's one-minute rate also counts
# the calls the old fleet answered earlier in the minute), then a short bake. The latency guard is
# loosened: on a laptop's two cores, which also start the new fleet's container, a call can wait a second,
# and a good version rolled back for that would tell the wrong story. Two instances, as prod runs: a fleet of
# one cannot take a canary and rolls out all at once (headrace/serving/rollout.py); locally, one process.
ROLLOUT: Final[dict[str, Any]] = {
    "wait_interval_s": 6,
    "bake_s": 3,
    "max_p99_latency_ms": 3000,
    "instance_count": 2,
}
# The drift check judges a window of at least min_rows rows; the cooldown keeps a second alarm episode in
# the demo from retraining again. A retraining run keeps the newest 4,000 rows (retrain_data.max_rows): the
# demo's few thousand labelled production rows and the newest uploaded rows before them, so that minutes of
# traffic can outweigh the 20,000 rows v1 learned the old rule from (production keeps a week of traffic
# against months of history; the demo has minutes).
MONITORING: Final[dict[str, Any]] = {
    "min_rows": 200,
    "cooldown_minutes": 60,
    "retrain_data": {"max_rows": 4_000},
}
# One transform instance: the demo's batch of 20,000 rows is one file for one container process.
BATCH: Final[dict[str, Any]] = {"instance_count": 1}
HEADER: Final = (
    "# Written by `headrace demo`: models/churn.yaml with short rollout timings and the demo's monitoring\n"
    "# and batch settings. Edit models/churn.yaml, not this copy: the demo rewrites it on every run.\n"
)


def write_demo_models(directory: Path, source: Path = DEFAULT_MODELS_DIR / f"{MODEL}.yaml") -> ModelConfig:
    """Write the demo's models directory (one model, churn) and return its validated config."""
    raw = yaml.safe_load(source.read_text())
    raw["rollout"] = {**raw.get("rollout", {}), **ROLLOUT}
    raw["monitoring"] = {**raw.get("monitoring", {}), **MONITORING}
    raw["batch"] = {**raw.get("batch", {}), **BATCH}
    directory.mkdir(parents=True, exist_ok=True)
    for stale in [*directory.glob("*.yaml"), *directory.glob("*.yml")]:
        stale.unlink()
    path = directory / f"{MODEL}.yaml"
    path.write_text(HEADER + yaml.safe_dump(raw, sort_keys=False))
    return load_model_file(path)


def timings(model: ModelConfig) -> str:
    """One line for the display: what differs from the shipped config."""
    rollout, monitoring = model.rollout, model.monitoring
    return (
        f"canary {rollout.canary_percent}% for {rollout.wait_interval_s} s, bake {rollout.bake_s} s, "
        f"p99 latency guard {rollout.max_p99_latency_ms / 1000:g} s; "
        f"drift min_rows {monitoring.min_rows}, cooldown {monitoring.cooldown_minutes} min, "
        f"retraining on the newest {monitoring.retrain_data.max_rows:,} rows"
    )
