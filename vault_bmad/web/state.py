"""What the web app serves from: the backend it is given, and the caches it keeps beside it."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from flask import Flask, abort, current_app, request

from vault_bmad.cache.tiered import TieredStats
from vault_bmad.engine.snapshot import EngineSnapshot
from vault_bmad.metrics.digest import Digest
from vault_bmad.metrics.queries import DigestCache, earliest_attempt
from vault_bmad.metrics.records import CacheSample
from vault_bmad.metrics.store import Store
from vault_bmad.web.analysis import AnalysisCache
from vault_bmad.web.ranges import DEFAULT_RANGE, TimeRange, time_range
from vault_bmad.web.vault_files import ReportShelf

EXTENSION = "vault_bmad"


class Backend(Protocol):
    """What the web app reads and asks of the running service."""

    store: Store
    started_at: float
    vault: Path

    def snapshot(self) -> EngineSnapshot: ...

    def metrics_text(self) -> bytes: ...

    def rerun(self, task_id: str) -> bool:
        """Set the task's note back to `status: todo`, as the user would; False if unknown
        or queued or running now."""
        ...

    def retry(self, statuses: Collection[str]) -> list[str]:
        """Rerun every task that ended in one of `statuses`; their ids."""
        ...

    def cache_stats(self) -> TieredStats | None:
        """The result cache's live counters, or None when the engine has no tiered cache."""
        ...

    def broken(self) -> dict[str, str]:
        """Each part of the service that is not working now ("store", "watcher", ...),
        with why; empty when all work."""
        ...


class FailedRequests:
    """Requests the app could not answer (500) lately, for `/api/health`; thread-safe."""

    def __init__(self, window_s: float = 600.0, wall: Callable[[], float] = time.time) -> None:
        self.window_s = window_s
        self._wall = wall
        self._times: deque[float] = deque(maxlen=1000)
        self._last = ""
        self._lock = threading.Lock()

    def record(self, method: str, path: str, error: BaseException) -> None:
        with self._lock:
            self._times.append(self._wall())
            self._last = f"{method} {path[:200]}: {type(error).__name__}: {str(error)[:300]}"

    def problem(self) -> str | None:
        """How many requests failed within the window, and the last; None if none did."""
        since = self._wall() - self.window_s
        with self._lock:
            recent = sum(1 for at in self._times if at >= since)
            last = self._last
        if not recent:
            return None
        minutes = round(self.window_s / 60)
        return f"{recent} request(s) failed in the last {minutes} minutes; the last: {last}"


@dataclass
class Dashboard:
    backend: Backend
    wall: Callable[[], float] = time.time
    digests: DigestCache = field(init=False)
    analyses: AnalysisCache = field(init=False)
    reports: ReportShelf = field(init=False)
    failures: FailedRequests = field(init=False)

    _earliest: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.failures = FailedRequests(wall=self.wall)
        self.digests = DigestCache(self.backend.store)
        self.analyses = AnalysisCache(self.backend.store, wall=self.wall)
        self.reports = ReportShelf(self.backend.vault)

    def earliest(self) -> float | None:
        """When the first recorded attempt was queued; kept once known, as none is earlier."""
        if self._earliest is None:
            self._earliest = earliest_attempt(self.backend.store)
        return self._earliest

    def time_range(self, name: str | None) -> TimeRange:
        """The range a request names (`since=` or `range=`, with `from` and `to` for a
        custom one); 400 for one that is not a span."""
        try:
            return time_range(
                name or DEFAULT_RANGE,
                self.wall(),
                self.earliest(),
                start=_number_arg("from"),
                end=_number_arg("to"),
            )
        except ValueError as exc:
            abort(400, description=str(exc))

    def digest(self, period: TimeRange) -> Digest:
        """The period's digest, with the cache's counters now when the period runs to now."""
        digest = self.digests.digest(period.since, period.until, period.bucket_s)
        live = self.backend.cache_stats()
        if live is None or period.until < self.wall() - 1.0:
            return digest
        return digest.with_samples(CacheSample.of(live.by_level(), period.until))


def _number_arg(name: str) -> float | None:
    text = request.args.get(name)
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        abort(400, description=f"{name} must be epoch seconds, not {text!r}")


def install(app: Flask, dashboard: Dashboard) -> None:
    app.extensions[EXTENSION] = dashboard


def dashboard() -> Dashboard:
    """The dashboard of the app handling the current request."""
    found: Dashboard = current_app.extensions[EXTENSION]
    return found
