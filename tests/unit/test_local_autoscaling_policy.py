"""Target tracking as the local plane evaluates it (headrace/local/autoscaling/policy.py): out within max,
in only after the cooldown, within the target's bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from headrace.local.autoscaling.policy import TargetState, TrackingPolicy, decide

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
POLICY = TrackingPolicy(target=100.0, scale_in_cooldown_s=300, scale_out_cooldown_s=60)


def _state(current: int, **kwargs: datetime | None) -> TargetState:
    return TargetState(min_capacity=1, max_capacity=4, current=current, **kwargs)  # type: ignore[arg-type]


def test_traffic_above_the_target_scales_out_in_proportion() -> None:
    decision = decide(_state(1), POLICY, 250.0, NOW)
    assert decision is not None and (decision.desired, decision.direction) == (3, "out")


def test_scale_out_stops_at_max_capacity() -> None:
    decision = decide(_state(2), POLICY, 1_000.0, NOW)
    assert decision is not None and decision.desired == 4
    assert decide(_state(4), POLICY, 1_000.0, NOW) is None


def test_a_second_scale_out_waits_for_the_scale_out_cooldown() -> None:
    recent = NOW - timedelta(seconds=30)
    assert decide(_state(2, last_scale_out=recent), POLICY, 300.0, NOW) is None
    later = decide(_state(2, last_scale_out=recent), POLICY, 300.0, NOW + timedelta(seconds=31))
    assert later is not None and later.desired == 4


def test_idle_traffic_scales_in_only_after_the_scale_in_cooldown() -> None:
    scaled = NOW - timedelta(seconds=200)
    assert decide(_state(3, last_scale_out=scaled), POLICY, 0.0, NOW) is None
    decision = decide(_state(3, last_scale_out=scaled), POLICY, 0.0, NOW + timedelta(seconds=100))
    assert decision is not None and (decision.desired, decision.direction) == (1, "in")


def test_scale_in_never_goes_below_min_capacity() -> None:
    state = TargetState(min_capacity=2, max_capacity=4, current=3)
    decision = decide(state, POLICY, 10.0, NOW)
    assert decision is not None and decision.desired == 2
    assert decide(TargetState(min_capacity=2, max_capacity=4, current=2), POLICY, 0.0, NOW) is None


def test_traffic_at_the_target_changes_nothing() -> None:
    assert decide(_state(2), POLICY, 100.0, NOW) is None


def test_disable_scale_in_keeps_the_capacity() -> None:
    policy = TrackingPolicy(
        target=100.0, scale_in_cooldown_s=0, scale_out_cooldown_s=0, disable_scale_in=True
    )
    assert decide(_state(3), policy, 0.0, NOW) is None


def test_a_capacity_outside_new_bounds_is_brought_inside_without_data() -> None:
    decision = decide(TargetState(min_capacity=2, max_capacity=3, current=1), POLICY, None, NOW)
    assert decision is not None and (decision.desired, decision.direction) == (2, "out")
    decision = decide(TargetState(min_capacity=1, max_capacity=2, current=5), POLICY, None, NOW)
    assert decision is not None and (decision.desired, decision.direction) == (2, "in")
