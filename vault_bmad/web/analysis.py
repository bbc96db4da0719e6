"""The overview's findings and advice: the analyzer's, on the range shown.

`analyze` works on attempt records, so it sees at most the latest `MAX_ATTEMPTS` of the
range (the period then starts at the first of them), and its answer is kept for `ttl_s`
seconds per range, so a page polling every two seconds does not re-run it each time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from cachetools import TTLCache

from vault_bmad.engine.snapshot import EngineSnapshot
from vault_bmad.metrics.analyze import analyze
from vault_bmad.metrics.queries import cache_samples_from
from vault_bmad.metrics.store import Store
from vault_bmad.web.ranges import TimeRange

MAX_ATTEMPTS = 20_000


@dataclass(frozen=True)
class LastAnalysis:
    at: float  # when it ran, epoch seconds
    since: float
    until: float
    attempts: int
    limited: bool  # the range held more attempts than were analyzed
    bottlenecks: tuple[dict[str, Any], ...]
    recommendations: tuple[dict[str, Any], ...]
    findings: tuple[dict[str, Any], ...]  # the bottlenecks grouped by kind, with advice
    critical_path: tuple[str, ...]
    critical_path_s: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class AnalysisCache:
    """The latest analysis per range; safe across threads."""

    def __init__(
        self,
        store: Store,
        *,
        ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self.store = store
        self._wall = wall
        self.max_attempts = max_attempts
        self._cache: TTLCache[str, LastAnalysis] = TTLCache(maxsize=8, ttl=ttl_s, timer=clock)
        self._lock = threading.Lock()

    def latest(self, snapshot: EngineSnapshot, period: TimeRange) -> LastAnalysis:
        with self._lock:
            known = self._cache.get(period.key)
        if known is not None:
            return known
        found = self._analyze(snapshot, period)
        with self._lock:
            self._cache[period.key] = found
        return found

    def _analyze(self, snapshot: EngineSnapshot, period: TimeRange) -> LastAnalysis:
        until = period.until + 1e-6  # half-open: an attempt ending now counts
        attempts = self.store.attempts(since=period.since, until=until, limit=self.max_attempts)
        limited = len(attempts) >= self.max_attempts
        since = attempts[0].ended_at if limited else period.since
        until = max(since, until)
        analysis = analyze(
            attempts,
            since=since,
            until=until,
            capacities={agent.id: agent.capacity for agent in snapshot.agents},
            cache_samples=cache_samples_from(self.store, since),
            dependencies={task.id: task.depends_on for task in snapshot.tasks},
            agent_changes=self.store.agent_changes(),
        )
        return LastAnalysis(
            at=self._wall(),
            since=since,
            until=until,
            attempts=analysis.overall.attempts,
            limited=limited,
            bottlenecks=tuple(asdict(b) for b in analysis.bottlenecks),
            recommendations=tuple(asdict(r) for r in analysis.recommendations),
            findings=tuple(asdict(f) for f in analysis.findings),
            critical_path=analysis.critical_path,
            critical_path_s=analysis.critical_path_s,
        )
