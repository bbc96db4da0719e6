"""One attempt at one task, as a worker runs it: the runtime call, through the cache.

`perform` is a plain top-level function of plain inputs, so any `concurrent.futures`
executor can run it, in this process or another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from vault_bmad.cache.keys import content_key
from vault_bmad.runtimes.base import RunRequest, Runtime, RuntimeOutput, cap_output


class ResultCache(Protocol):
    """What the engine needs of a cache: compute once per key, and say which level served."""

    def get_or_compute(
        self, key: str, compute: Callable[[], RuntimeOutput]
    ) -> tuple[RuntimeOutput, str]: ...

    def stats(self) -> CacheStatsLike: ...


class CacheStatsLike(Protocol):
    def by_level(self) -> dict[str, dict[str, int]]: ...


@dataclass(frozen=True)
class AttemptResult:
    result: RuntimeOutput
    cache: str  # the level that served it, or "miss"


def request_key(request: RunRequest) -> str:
    """The cache key of a request: a hash of everything its result depends on."""
    return content_key(request.cache_parts())


def perform(
    runtime: Runtime, request: RunRequest, cache: ResultCache | None, key: str | None = None
) -> AttemptResult:
    """Run `request` on `runtime`; a cached result for the same content is used if there is
    one. `key` is `request_key(request)`, when the caller has it already. Whatever the
    runtime, the output is cut at the request's output cap."""

    def compute() -> RuntimeOutput:
        return cap_output(runtime.run(request), request.max_output_bytes)

    if cache is None:
        return AttemptResult(compute(), "miss")
    result, level = cache.get_or_compute(key or request_key(request), compute)
    return AttemptResult(result, level)
