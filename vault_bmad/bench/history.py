"""A recorded history of a million attempts, as the store and dashboard benchmarks read it:
7 days ending at a fixed `NOW`, 12 agents, each task tried up to three times."""

from __future__ import annotations

import random
from collections.abc import Iterator

from vault_bmad.metrics.records import Attempt

NOW = 1_700_000_000.0
SPAN = 7 * 24 * 3600.0
AGENTS = tuple(f"agent-{n:02d}" for n in range(12))
STATUSES = ("done",) * 90 + ("failed",) * 7 + ("timeout",) * 3
CACHES = ("miss", "miss", "L1", "L1", "L1", "L2", "L3")


def generated_attempts(total: int, batch: int, seed: int = 7) -> Iterator[list[Attempt]]:
    """Attempts in time order, as a service would record them, in batches."""
    rng = random.Random(seed)
    for first in range(0, total, batch):
        rows = []
        for number in range(first, min(total, first + batch)):
            ended = NOW - SPAN + SPAN * (number + 1) / total
            duration = rng.lognormvariate(-0.5, 0.8)  # seconds, median ~0.6
            wait = rng.lognormvariate(-3.0, 1.0)
            rows.append(
                Attempt(
                    task_id=f"task-{number // 3}",
                    agent=rng.choice(AGENTS),
                    runtime="llm",
                    attempt=1 + number % 3,
                    status=rng.choice(STATUSES),
                    queued_at=ended - duration - wait,
                    started_at=ended - duration,
                    ended_at=ended,
                    cache=rng.choice(CACHES),
                    tokens_in=rng.randrange(100, 3000),
                    tokens_out=rng.randrange(10, 1000),
                    calls=1,
                )
            )
        yield rows
