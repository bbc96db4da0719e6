"""The servers agents talk to, as attempts find them: up, or down since when and why.

An endpoint is down from its first attempt that could not connect until one that gets an
answer, any answer. Down for `give_up_s`, it is dead: `run` gives up on the tasks waiting
for it; `serve` keeps them queued and shows it down. Pure: it is told what happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from vault_bmad.errors import Failure


@dataclass(frozen=True)
class EndpointView:
    """One endpoint now, for the API, the dashboard and the progress line."""

    url: str
    agents: tuple[str, ...]  # the agents seen using it
    down_since: float | None  # wall clock; None while up
    error: str | None  # why it is down
    dead: bool  # down for `give_up_s`


@dataclass
class _Endpoint:
    agents: set[str]
    down_since: float | None = None  # monotonic
    error: str | None = None


class Endpoints:
    """Every endpoint attempts have used; see the module docstring."""

    def __init__(
        self,
        give_up_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.give_up_s = give_up_s
        self._clock, self._wall = clock, wall
        self._endpoints: dict[str, _Endpoint] = {}

    def observe(self, url: str, agent_id: str, failure: Failure | None) -> None:
        """An attempt by `agent_id` at `url` ended: answered (`failure` None, or one that is
        not `unreachable`), or could not connect."""
        endpoint = self._endpoints.setdefault(url, _Endpoint(set()))
        endpoint.agents.add(agent_id)
        if failure is None or not failure.unreachable:
            endpoint.down_since, endpoint.error = None, None
        else:
            if endpoint.down_since is None:
                endpoint.down_since = self._clock()
            endpoint.error = failure.message

    def dead(self) -> dict[str, tuple[str, ...]]:
        """The endpoints down for `give_up_s` or more, with the agents that use them."""
        now = self._clock()
        return {
            url: tuple(sorted(endpoint.agents))
            for url, endpoint in self._endpoints.items()
            if endpoint.down_since is not None and now - endpoint.down_since >= self.give_up_s
        }

    def give_up_message(self, url: str) -> str:
        endpoint = self._endpoints[url]
        return (
            f"gave up on LLM server {url}: unreachable for {self.give_up_s:g} s "
            f"(llm_give_up_s); the last error: {endpoint.error}"
        )

    def next_check(self) -> float | None:
        """When the next endpoint that is down turns dead (monotonic), to wake up then."""
        times = [
            endpoint.down_since + self.give_up_s
            for endpoint in self._endpoints.values()
            if endpoint.down_since is not None
        ]
        return min(times, default=None)

    def views(self) -> tuple[EndpointView, ...]:
        now, wall = self._clock(), self._wall()
        return tuple(
            EndpointView(
                url,
                tuple(sorted(endpoint.agents)),
                None if endpoint.down_since is None else wall - (now - endpoint.down_since),
                endpoint.error,
                endpoint.down_since is not None and now - endpoint.down_since >= self.give_up_s,
            )
            for url, endpoint in sorted(self._endpoints.items())
        )
