"""One attempt at one task, as a worker runs it: the runtime call, through the cache.

`perform` is a plain top-level function of plain inputs, so any `concurrent.futures`
executor can run it, in this process or another.
"""

from __future__ import annotations

import time
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
    # Seconds the runtime's call took, timed by the worker that made it (None when no call
    # was made): the agent's own time, without the engine's queues on either side.
    call_s: float | None = None


def request_key(request: RunRequest) -> str:
    """The cache key of a request: a hash of everything its result depends on."""
    return content_key(request.cache_parts())


class _Asked(Exception):
    """The agent asked its user: raised through the cache, so that nothing is stored."""

    def __init__(self, output: RuntimeOutput) -> None:
        super().__init__(output)
        self.output = output


def perform(
    runtime: Runtime, request: RunRequest, cache: ResultCache | None, key: str | None = None
) -> AttemptResult:
    """Run `request` on `runtime`; a cached result for the same content is used if there is
    one. `key` is `request_key(request)`, when the caller has it already. Whatever the
    runtime, the output is cut at the request's output cap.

    The cache never holds an agent's questions, and a request carrying answers (a
    conversation that resumes) never goes through it: it is for one user at one time."""

    timed: list[float] = []

    def compute() -> RuntimeOutput:
        started = time.monotonic()
        output = cap_output(runtime.run(request), request.max_output_bytes)
        timed.append(time.monotonic() - started)
        return output

    def compute_to_keep() -> RuntimeOutput:
        output = compute()
        if output.ask is not None:
            raise _Asked(output)
        return output

    if cache is None or request.rounds:
        output = compute()
        return AttemptResult(output, "miss", timed[0])
    try:
        result, level = cache.get_or_compute(key or request_key(request), compute_to_keep)
    except _Asked as asked:
        return AttemptResult(asked.output, "miss", timed[0])
    return AttemptResult(result, level, timed[0] if timed else None)
