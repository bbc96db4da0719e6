"""One attempt at one task, as a worker runs it: the runtime call, through the cache.

`perform` is a plain top-level function of plain inputs, so any `concurrent.futures`
executor can run it, in this process or another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from vault_bmad.runtimes.base import RunRequest, RunResult, Runtime


class ResultCache(Protocol):
    """What the engine needs of a cache: compute once per key, and say which level served."""

    def get_or_compute(
        self, key: str, compute: Callable[[], RunResult]
    ) -> tuple[RunResult, str]: ...

    def stats(self) -> CacheStatsLike: ...


class CacheStatsLike(Protocol):
    def by_level(self) -> dict[str, dict[str, int]]: ...


@dataclass(frozen=True)
class AttemptResult:
    result: RunResult
    cache: str  # the level that served it, or "miss"


def perform(runtime: Runtime, request: RunRequest, cache: ResultCache | None) -> AttemptResult:
    """Run `request` on `runtime`; a cached result for the same content is used if there is one."""
    if cache is None:
        return AttemptResult(runtime.run(request), "miss")
    from vault_bmad.cache.keys import content_key

    result, level = cache.get_or_compute(
        content_key(request.cache_parts()), lambda: runtime.run(request)
    )
    return AttemptResult(result, level)
