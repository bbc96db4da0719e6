"""Agent health: the score, taking out, cool-down, probe, and peak-EWMA latency."""

from __future__ import annotations

import math

import pytest
from engine_clock import FakeClock

from vault_bmad.engine.health import AgentState, HealthMonitor


def test_a_new_agent_is_healthy_and_in_service() -> None:
    health = HealthMonitor(clock=FakeClock())
    assert health.score("dev") == 1.0 and health.in_service("dev")
    assert health.peak_latency("dev") is None and health.probe_at("dev") is None


def test_one_failure_among_successes_keeps_an_agent_in() -> None:
    health = HealthMonitor(clock=FakeClock())
    for _ in range(10):
        assert health.record("dev", ok=True, seconds=1.0, timeout=30.0) is None
    assert health.record("dev", ok=False, seconds=1.0, timeout=30.0) is None
    assert 0.7 <= health.score("dev") < 1.0 and health.in_service("dev")


def test_repeated_failures_take_an_agent_out() -> None:
    health = HealthMonitor(clock=FakeClock())
    health.record("dev", ok=True, seconds=1.0, timeout=30.0)
    assert health.record("dev", ok=False, seconds=1.0, timeout=30.0) is None
    change = health.record("dev", ok=False, seconds=1.0, timeout=30.0)
    assert change is not None
    assert (change.before, change.after) == (AgentState.IN_SERVICE, AgentState.OUT)
    assert change.score < 0.7 and "0.7" in change.reason
    assert health.state("dev") is AgentState.OUT and not health.in_service("dev")


def test_work_near_its_timeout_lowers_the_score() -> None:
    health = HealthMonitor(clock=FakeClock())
    for _ in range(20):
        health.record("fast", ok=True, seconds=1.0, timeout=30.0)
        health.record("crawl", ok=True, seconds=29.0, timeout=30.0)
    assert health.score("crawl") < health.score("fast") - 0.15
    assert health.snapshot("crawl").latency == pytest.approx(29.0)


def test_probe_after_cool_down_brings_the_agent_back() -> None:
    clock = FakeClock()
    health = HealthMonitor(clock=clock, cooldown=30.0)
    health.take_out("dev", "by hand")
    assert health.probe_at("dev") == clock.now + 30.0
    clock.advance(29.9)
    assert not health.probe_due("dev")
    with pytest.raises(ValueError):
        health.begin_probe("dev")
    clock.advance(0.1)
    assert health.probe_due("dev")
    assert health.begin_probe("dev").after is AgentState.PROBING
    assert not health.probe_due("dev") and not health.in_service("dev")
    change = health.record("dev", ok=True, seconds=1.0, timeout=30.0, probe=True)
    assert change is not None and change.after is AgentState.IN_SERVICE
    assert health.in_service("dev") and health.score("dev") >= 0.7


def test_a_failed_probe_restarts_the_cool_down() -> None:
    clock = FakeClock()
    health = HealthMonitor(clock=clock, cooldown=30.0)
    for _ in range(3):
        health.record("dev", ok=False, seconds=1.0, timeout=30.0)
    clock.advance(30)
    health.begin_probe("dev")
    clock.advance(5)
    change = health.record("dev", ok=False, seconds=1.0, timeout=30.0, probe=True)
    assert change is not None and change.after is AgentState.OUT
    assert health.probe_at("dev") == clock.now + 30.0
    clock.advance(29)
    assert not health.probe_due("dev")


def test_only_the_probe_brings_an_agent_back() -> None:
    clock = FakeClock()
    health = HealthMonitor(clock=clock)
    health.take_out("dev")
    for _ in range(5):  # work it started before it was taken out, finishing well
        assert health.record("dev", ok=True, seconds=1.0, timeout=30.0) is None
    assert health.state("dev") is AgentState.OUT


def test_peak_ewma_jumps_up_at_once_and_decays_down() -> None:
    clock = FakeClock()
    health = HealthMonitor(clock=clock, latency_decay=10.0)
    health.record("a", ok=True, seconds=1.0)
    clock.advance(1)
    health.record("a", ok=True, seconds=5.0)
    assert health.peak_latency("a") == 5.0  # a slow answer counts in full at once
    clock.advance(1)
    health.record("a", ok=True, seconds=1.0)
    weight = math.exp(-1 / 10)
    assert health.peak_latency("a") == pytest.approx(5.0 * weight + 1.0 * (1 - weight))
    before = health.peak_latency("a")
    clock.advance(10)  # idle: the estimate decays, so the agent is tried again in time
    assert health.peak_latency("a") == pytest.approx(before * math.exp(-1))  # type: ignore[operator]


def test_snapshot_and_forget() -> None:
    clock = FakeClock()
    health = HealthMonitor(clock=clock)
    health.record("qa", ok=False, seconds=2.0, timeout=10.0)
    snap = health.snapshot("qa")
    assert snap.attempts == 1 and snap.consecutive_failures == 1 and snap.error_rate == 0.2
    health.forget("qa")
    assert health.snapshot("qa").attempts == 0


def test_an_agent_out_says_why_and_until_when() -> None:
    clock = FakeClock()
    health = HealthMonitor(clock=clock, cooldown=30.0)
    for _ in range(3):
        health.record("dev", ok=False, seconds=1.0, timeout=30.0, error="HTTP 503: Loading model")
    snapshot = health.snapshot("dev")
    assert snapshot.state is AgentState.OUT
    assert snapshot.why == "health fell below 0.7; the last failure: HTTP 503: Loading model"
    assert health.back_at("dev", wall_now=1000.0) == 1030.0
    clock.advance(10)
    assert health.back_at("dev", wall_now=1010.0) == 1030.0
    assert health.back_at("other", wall_now=1010.0) is None
