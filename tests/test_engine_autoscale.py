"""Auto-scaling: grow on sustained high use, shrink on sustained low, with hysteresis."""

from __future__ import annotations

import itertools

import pytest
from engine_clock import FakeClock

from vault_bmad.engine.autoscale import AutoScaler


def feed(scaler: AutoScaler, clock: FakeClock, utilization: float, seconds: int) -> list[int]:
    """One sample a second; the worker counts each decision moved to."""
    sizes = []
    for _ in range(seconds):
        decision = scaler.observe(utilization)
        if decision is not None:
            assert decision.workers == scaler.workers
            sizes.append(decision.workers)
        clock.advance(1)
    return sizes


def test_grows_only_after_a_sustained_window_of_high_use() -> None:
    clock = FakeClock()
    scaler = AutoScaler(min_workers=2, max_workers=20, window=30, cooldown=60, clock=clock)
    assert feed(scaler, clock, 0.95, 30) == []  # 29 s above: not yet
    assert feed(scaler, clock, 0.95, 1) == [scaler.workers] and scaler.workers > 2


def test_a_dip_restarts_the_window() -> None:
    clock = FakeClock()
    scaler = AutoScaler(min_workers=2, window=30, cooldown=60, clock=clock)
    for _ in range(5):
        assert feed(scaler, clock, 0.95, 25) == []
        assert feed(scaler, clock, 0.6, 1) == []
    assert scaler.workers == 2


def test_cooldown_spaces_out_changes_and_max_bounds_growth() -> None:
    clock = FakeClock()
    scaler = AutoScaler(min_workers=1, max_workers=10, window=10, cooldown=60, clock=clock)
    sizes = feed(scaler, clock, 1.0, 400)
    assert sizes == sorted(sizes) and sizes[-1] == 10 and scaler.workers == 10
    assert len(sizes) >= 2


def test_changes_are_at_least_a_cooldown_apart() -> None:
    clock = FakeClock()
    scaler = AutoScaler(min_workers=1, max_workers=50, window=5, cooldown=60, clock=clock)
    times = []
    for _ in range(600):
        if scaler.observe(1.0) is not None:
            times.append(clock.now)
        clock.advance(1)
    assert len(times) >= 2
    assert all(b - a >= 60 for a, b in itertools.pairwise(times))


def test_shrinks_on_sustained_low_use_within_the_minimum() -> None:
    clock = FakeClock()
    scaler = AutoScaler(
        min_workers=2, max_workers=10, initial=10, window=30, cooldown=30, clock=clock
    )
    sizes = feed(scaler, clock, 0.1, 600)
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 2 and scaler.workers == 2
    decision_sizes = feed(scaler, clock, 0.0, 200)
    assert decision_sizes == []  # already at the minimum


def test_the_band_between_thresholds_holds_steady() -> None:
    clock = FakeClock()
    scaler = AutoScaler(
        min_workers=1, max_workers=10, initial=5, window=10, cooldown=10, clock=clock
    )
    for level in (0.36, 0.5, 0.6, 0.7, 0.83):
        assert feed(scaler, clock, level, 100) == []
    # Swinging across both thresholds faster than the window changes nothing either.
    for _ in range(50):
        assert feed(scaler, clock, 0.95, 4) == []
        assert feed(scaler, clock, 0.1, 4) == []
    assert scaler.workers == 5


def test_growth_aims_at_the_target_utilization() -> None:
    clock = FakeClock()
    scaler = AutoScaler(max_workers=100, initial=10, window=1, cooldown=0, clock=clock)
    feed(scaler, clock, 1.5, 2)  # 15 workers' worth of demand, aiming at ~0.6 each
    assert scaler.workers == 26  # ceil(10 * 1.5 / 0.595)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        AutoScaler(min_workers=5, max_workers=2)
    with pytest.raises(ValueError):
        AutoScaler(scale_up_at=0.3, scale_down_at=0.5)
