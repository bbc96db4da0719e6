"""Agents out of service and LLM servers given up on, as a run tells and records them.

Health takes an agent out and lets it back (`health_changed`): the store records each
change (the analysis tells waits for an agent that was out by it) and the events say why,
and until when. A server down for `llm_give_up_s` is given up on (`give_up_on_dead`, as
`run` does): its agents are out for good, the tasks only they could take fail, and no
attempt at it is retried (`gone`).
"""

from __future__ import annotations

from collections.abc import Callable

from vault_bmad.engine.decisions import SchedulerChange
from vault_bmad.engine.endpoints import Endpoints
from vault_bmad.engine.health import AgentState, HealthChange
from vault_bmad.engine.journal import TaskJournal
from vault_bmad.engine.scheduler import Scheduler
from vault_bmad.errors import Failure
from vault_bmad.metrics.records import AgentChange
from vault_bmad.metrics.store import Store
from vault_bmad.vault.writer import iso_time


class Outages:
    """What the run tells of agents and servers that fail; see the module docstring."""

    def __init__(
        self,
        endpoints: Endpoints,
        scheduler: Scheduler,
        journal: TaskJournal,
        store: Store,
        wall: Callable[[], float],
        apply: Callable[[SchedulerChange, str], None],
    ) -> None:
        self._endpoints, self._scheduler, self._journal = endpoints, scheduler, journal
        self._store, self._wall, self._apply = store, wall, apply
        self._given_up: set[str] = set()  # endpoint URLs

    def gone(self, failure: Failure) -> bool:
        """Whether the failure is at an endpoint given up on: no retry can reach it."""
        return failure.unreachable and failure.endpoint in self._given_up

    def give_up_on_dead(self) -> None:
        """Give up on every endpoint dead by now, telling each once; the tasks only its
        agents could take fail (again as more of them queue)."""
        for url, agents in self._endpoints.dead().items():
            message = self._endpoints.give_up_message(url)
            if url not in self._given_up:
                self._given_up.add(url)
                for agent_id in agents:
                    self._journal.agent_event("gave-up", agent_id, message)
            self._apply(self._scheduler.give_up(agents, message), message)

    def health_changed(self, change: HealthChange) -> None:
        """Tell when an agent goes out (why, and until when) and when it is back, and
        record it."""
        self._store.record_agent_change(
            AgentChange(change.agent_id, str(change.after), self._wall(), change.reason)
        )
        if change.after is AgentState.IN_SERVICE:
            self._journal.agent_event("back", change.agent_id, change.reason)
        elif change.after is AgentState.OUT and change.agent_id not in self._retired_agents():
            back_at = self._scheduler.health.back_at(change.agent_id, self._wall())
            until = f"; next try at {iso_time(back_at)}" if back_at is not None else ""
            self._journal.agent_event("out", change.agent_id, change.reason + until)

    def _retired_agents(self) -> set[str]:
        """The agents of endpoints given up on (already told as given up)."""
        dead = self._endpoints.dead()
        return {agent for url in self._given_up for agent in dead.get(url, ())}
