"""Agent slots: the attempts running on each agent, against its capacity.

An attempt holds a slot of its agent from `take` until it ends (`end`). One that is over
while its task is not yet finished (its output note is being written) gives its slot back
at once (`release`): the task still runs, and `end` then finds it among the `finishing`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from vault_bmad.engine.decisions import Assignment
from vault_bmad.model.definitions import AgentDef


class Slots:
    """Who runs what, and which agents are full; pure bookkeeping for the scheduler."""

    def __init__(self, agents: Iterable[AgentDef]) -> None:
        self.running: dict[str, Assignment] = {}  # task id -> its attempt, holding a slot
        self.finishing: dict[str, Assignment] = {}  # attempt over, slot free: see `release`
        self.full: set[str] = set()  # agents whose every slot is taken
        self._in_flight: Counter[str] = Counter()
        self._capacity: dict[str, int] = {}
        self.set_agents(agents)

    def set_agents(self, agents: Iterable[AgentDef]) -> None:
        """Use these agents' capacities; attempts running go on."""
        self._capacity = {agent.id: agent.capacity for agent in agents}
        self.full = {agent_id for agent_id in self._capacity if not self.has_room(agent_id)}

    def take(self, assignment: Assignment) -> None:
        """The attempt starts, holding a slot of its agent."""
        self.running[assignment.task.id] = assignment
        self._in_flight[assignment.agent_id] += 1
        self._note_room(assignment.agent_id)

    def free(self, task_id: str) -> Assignment:
        """Take a task out of running, freeing its agent's slot."""
        assignment = self.running.pop(task_id)
        self._in_flight[assignment.agent_id] -= 1
        self._note_room(assignment.agent_id)
        return assignment

    def release(self, task_id: str) -> None:
        """The task's attempt is over, the task not yet finished: its slot is free."""
        self.finishing[task_id] = self.free(task_id)

    def end(self, task_id: str) -> Assignment:
        """The task's attempt has ended: its assignment, its slot freed if still held."""
        return self.finishing.pop(task_id, None) or self.free(task_id)

    def runs(self, task_id: str) -> bool:
        """Whether the task is running: holding a slot, or finishing."""
        return task_id in self.running or task_id in self.finishing

    def has_room(self, agent_id: str) -> bool:
        return self._in_flight[agent_id] < self._capacity[agent_id]

    def in_flight(self, agent_id: str) -> int:
        return self._in_flight[agent_id]

    def _note_room(self, agent_id: str) -> None:
        """Keep `full` current for one agent (one no longer known is never full)."""
        if agent_id in self._capacity and not self.has_room(agent_id):
            self.full.add(agent_id)
        else:
            self.full.discard(agent_id)
