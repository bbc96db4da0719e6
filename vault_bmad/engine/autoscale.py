"""Auto-scaling of the worker pool from utilization samples, with hysteresis.

The pool grows when utilization has stayed above `scale_up_at` (0.84) for `window` seconds
and shrinks when it has stayed below `scale_down_at` (0.35) as long; after a change it waits
`cooldown` seconds before the next. The new size aims the utilization seen at `target`
(midway between the thresholds), moving at least one worker, within [min_workers, max_workers].
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ScaleDecision:
    previous: int
    workers: int
    utilization: float
    at: float
    reason: str


class AutoScaler:
    """Decides the worker count; the orchestrator samples utilization and applies decisions."""

    def __init__(
        self,
        *,
        min_workers: int = 1,
        max_workers: int = 10,
        initial: int | None = None,
        scale_up_at: float = 0.84,
        scale_down_at: float = 0.35,
        window: float = 30.0,
        cooldown: float = 60.0,
        target: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= min_workers <= max_workers:
            raise ValueError("need 1 <= min_workers <= max_workers")
        if not 0 <= scale_down_at < scale_up_at:
            raise ValueError("need 0 <= scale_down_at < scale_up_at")
        self.min_workers = min_workers
        self.max_workers = max_workers
        self.scale_up_at = scale_up_at
        self.scale_down_at = scale_down_at
        self.window = window
        self.cooldown = cooldown
        self.target = target if target is not None else (scale_up_at + scale_down_at) / 2
        self._clock = clock
        self._workers = min(max_workers, max(min_workers, initial or min_workers))
        self._last_change: float | None = None
        self._high_since: float | None = None
        self._low_since: float | None = None

    @property
    def workers(self) -> int:
        return self._workers

    def observe(self, utilization: float) -> ScaleDecision | None:
        """Take one sample (busy workers / workers; may exceed 1 to count waiting work).

        Returns a decision when the pool should change size, already applied to `workers`.
        """
        now = self._clock()
        self._high_since = _since(self._high_since, now) if utilization > self.scale_up_at else None
        self._low_since = _since(self._low_since, now) if utilization < self.scale_down_at else None
        if self._last_change is not None and now - self._last_change < self.cooldown:
            return None
        if self._high_since is not None and now - self._high_since >= self.window:
            wanted = max(self._workers + 1, math.ceil(self._workers * utilization / self.target))
            return self._resize(min(self.max_workers, wanted), utilization, now, "sustained high")
        if self._low_since is not None and now - self._low_since >= self.window:
            wanted = min(self._workers - 1, math.ceil(self._workers * utilization / self.target))
            return self._resize(max(self.min_workers, wanted), utilization, now, "sustained low")
        return None

    def _resize(
        self, workers: int, utilization: float, now: float, why: str
    ) -> ScaleDecision | None:
        if workers == self._workers:
            return None
        previous, self._workers = self._workers, workers
        self._last_change, self._high_since, self._low_since = now, None, None
        reason = (
            f"utilization {why} ({utilization:.2f} for {self.window:g}s): "
            f"{previous} → {workers} workers"
        )
        return ScaleDecision(previous, workers, utilization, now, reason)


def _since(started: float | None, now: float) -> float:
    return now if started is None else started
