"""A tuned copy of a model config, for the tests that synthesize or run a tuned model."""

from __future__ import annotations

from typing import Any

from headrace.config import ModelConfig

# Every kind of range, early stopping on: what a tuned model's template and request must carry.
TUNING: dict[str, Any] = {
    "strategy": "Bayesian",
    "max_jobs": 6,
    "max_parallel_jobs": 2,
    "early_stopping": True,
    "ranges": {
        "eta": {"min": 0.01, "max": 0.5, "scaling": "logarithmic"},
        "max_depth": {"min": 2, "max": 8},
        "grow_policy": {"values": ["depthwise", "lossguide"]},
    },
}


def tuned(base: ModelConfig, name: str, tuning: dict[str, Any]) -> ModelConfig:
    """`base` renamed `name`, with `tuning`; through validation, as a models/ file would be."""
    document = base.model_dump(mode="json", exclude_unset=True)
    document["name"] = name
    trainer = document.get("trainer", {})
    # A tuned name is not also fixed (the config refuses that): the trials' static ones are the rest.
    fixed = {k: v for k, v in trainer.get("hyperparameters", {}).items() if k not in tuning["ranges"]}
    document["trainer"] = {**trainer, "hyperparameters": fixed, "tuning": tuning}
    return ModelConfig.model_validate(document)
