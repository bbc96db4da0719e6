"""Agent slots: an attempt holds one of its agent's slots until it ends or is released."""

from __future__ import annotations

import pytest

from vault_bmad.engine.decisions import Assignment
from vault_bmad.engine.slots import Slots
from vault_bmad.model.definitions import AgentDef, TaskDef

DEV = AgentDef(id="dev", name="Dev", path="Agents/Dev.md", capacity=2)


def attempt(task_id: str, agent_id: str = "dev") -> Assignment:
    task = TaskDef(id=task_id, path=f"Tasks/{task_id}.md", title=task_id)
    return Assignment(task, agent_id, 1, False, 1.0, 30.0)


def test_an_agent_is_full_while_its_attempts_hold_every_slot() -> None:
    slots = Slots([DEV])
    slots.take(attempt("a"))
    assert slots.has_room("dev") and "dev" not in slots.full
    slots.take(attempt("b"))
    assert not slots.has_room("dev") and slots.full == {"dev"}
    assert slots.free("a").task.id == "a"
    assert slots.in_flight("dev") == 1 and not slots.full


def test_a_released_attempt_frees_its_slot_while_its_task_still_runs() -> None:
    slots = Slots([DEV])
    slots.take(attempt("a"))
    slots.take(attempt("b"))
    slots.release("a")  # its output note is being written
    assert slots.runs("a") and slots.has_room("dev") and "a" not in slots.running
    assert slots.end("a").task.id == "a"  # ended without freeing a second slot
    assert not slots.runs("a") and slots.in_flight("dev") == 1
    assert slots.end("b").task.id == "b" and slots.in_flight("dev") == 0
    with pytest.raises(KeyError):
        slots.end("b")


def test_new_capacities_apply_to_the_attempts_running() -> None:
    slots = Slots([DEV])
    slots.take(attempt("a"))
    slots.set_agents([DEV.model_copy(update={"capacity": 1})])
    assert slots.full == {"dev"}
    slots.set_agents([])  # an agent no longer known is never full
    slots.free("a")
    assert not slots.full
