"""Recorded history for the dashboard's tests: attempts and cache samples, seeded, real."""

from __future__ import annotations

import random
from collections.abc import Sequence

from vault_bmad.metrics.records import Attempt, CacheSample
from vault_bmad.metrics.store import Store

STATUSES = ("done",) * 10 + ("failed", "timeout")
CACHES = ("miss", "miss", "L1", "L1", "L1", "L2", "L3")


def history(
    now: float,
    count: int,
    agents: Sequence[str],
    *,
    span_s: float = 3000.0,
    seed: int = 5,
) -> list[Attempt]:
    """`count` attempts ending evenly over the `span_s` seconds before `now`; every fifth
    task is tried twice, its first try failed."""
    rng = random.Random(seed)
    found = []
    for number in range(count):
        ended = now - span_s + span_s * (number + 0.5) / count
        run = rng.lognormvariate(-0.5, 0.7)
        wait = rng.lognormvariate(-2.0, 1.0)
        retry = number % 5 == 1
        found.append(
            Attempt(
                task_id=f"history/task-{number // 2 if retry else number}",
                agent=rng.choice(list(agents)),
                runtime="template",
                attempt=2 if retry else 1,
                status=rng.choice(STATUSES),
                queued_at=ended - run - wait,
                started_at=ended - run,
                ended_at=ended,
                error=None,
                cache=rng.choice(CACHES),
            )
        )
    return found


def cache_samples(now: float, minutes: int, seed: int = 9) -> list[CacheSample]:
    """One sample a minute per level of cumulative counters, L1 hitting most."""
    rng = random.Random(seed)
    counters = {level: [0, 0, 0] for level in ("L1", "L2", "L3")}
    shares = {"L1": 0.7, "L2": 0.45, "L3": 0.3}
    found = []
    for minute in range(minutes):
        for level, share in shares.items():
            lookups = 40 + rng.randrange(10)
            hits = round(lookups * share)
            counters[level][0] += hits
            counters[level][1] += lookups - hits
            counters[level][2] += rng.randrange(3)
            hits_total, misses_total, evictions = counters[level]
            at = now - (minutes - minute) * 60 + 1
            found.append(
                CacheSample(level, hits_total, misses_total, evictions, 0, 50 + minute, at)
            )
    return found


def record(store: Store, attempts: Sequence[Attempt], samples: Sequence[CacheSample]) -> None:
    store.record_attempts(attempts)
    for sample in samples:
        store.record_cache_sample(sample)
    store.flush()
