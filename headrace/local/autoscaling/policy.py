"""Target tracking, as Application Auto Scaling documents it for SageMaker variants
(https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-target-tracking.html,
https://docs.aws.amazon.com/sagemaker/latest/dg/endpoint-auto-scaling-add-code-define.html):

- the metric, SageMakerVariantInvocationsPerInstance, is the variant's Invocations per minute divided by its
  instances; capacity moves in proportion to keep it at the target: ceil(current * metric / target);
- the new capacity stays within the scalable target's MinCapacity..MaxCapacity, and a current capacity
  outside them is brought inside (RegisterScalableTarget);
- after a scale-out, the next scale-out waits ScaleOutCooldown; a scale-in waits ScaleInCooldown after the
  last scaling activity of either kind, and never happens while DisableScaleIn is set.

Pure: no clock, no AWS; the evaluator feeds it what it read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal


@dataclass(frozen=True)
class TrackingPolicy:
    target: float
    scale_in_cooldown_s: float
    scale_out_cooldown_s: float
    disable_scale_in: bool = False


@dataclass(frozen=True)
class TargetState:
    """A scalable target as the evaluator sees it: its bounds, capacity and last activities."""

    min_capacity: int
    max_capacity: int
    current: int
    last_scale_out: datetime | None = None
    last_scale_in: datetime | None = None


@dataclass(frozen=True)
class Decision:
    desired: int
    direction: Literal["out", "in"]
    cause: str


def _since(moment: datetime | None, now: datetime) -> float:
    return math.inf if moment is None else (now - moment).total_seconds()


def decide(
    state: TargetState, policy: TrackingPolicy, per_instance: float | None, now: datetime
) -> Decision | None:
    """The scaling activity to start now, or None. `per_instance` is the metric (None: no data)."""
    low, high = state.min_capacity, state.max_capacity
    if state.current < low or state.current > high:
        desired = min(max(state.current, low), high)
        direction: Literal["out", "in"] = "out" if desired > state.current else "in"
        return Decision(desired, direction, f"capacity {state.current} outside {low}..{high}")
    if per_instance is None:
        return None
    # A small tolerance, so that float noise at exactly the target does not add an instance.
    wanted = math.ceil(state.current * per_instance / policy.target - 1e-9)
    desired = min(max(wanted, low), high)
    cause = (
        f"SageMakerVariantInvocationsPerInstance {per_instance:g} against target {policy.target:g} "
        f"with {state.current} instance(s)"
    )
    if desired > state.current:
        if _since(state.last_scale_out, now) < policy.scale_out_cooldown_s:
            return None
        return Decision(desired, "out", cause)
    if desired < state.current:
        if policy.disable_scale_in:
            return None
        last = max((m for m in (state.last_scale_out, state.last_scale_in) if m), default=None)
        if _since(last, now) < policy.scale_in_cooldown_s:
            return None
        return Decision(desired, "in", cause)
    return None
