"""Tasks held for an identical request: who waits, who is served, and how many at once."""

from __future__ import annotations

from vault_bmad.engine.attempt import AttemptResult
from vault_bmad.engine.decisions import Assignment
from vault_bmad.engine.twins import AT_ONCE, Twins
from vault_bmad.model.definitions import TaskDef
from vault_bmad.runtimes.base import RuntimeOutput

ANSWER = AttemptResult(RuntimeOutput(text="the answer", runtime="llm"), "miss")


def assignment(task_id: str, *, probe: bool = False) -> Assignment:
    task = TaskDef(id=task_id, path=f"Tasks/{task_id}.md", title=task_id)
    return Assignment(task, "dev", 1, probe, 1.0, 30.0)


def test_the_first_request_leads_and_the_next_identical_ones_wait_but_a_probe_never() -> None:
    twins = Twins()
    assert not twins.hold("k", assignment("lead"))
    assert twins.hold("k", assignment("twin"))
    assert not twins.hold("k", assignment("probe", probe=True))  # it runs: it tests its agent
    assert not twins.hold("other", assignment("other"))


def test_an_answer_is_served_a_few_at_a_time_and_a_failure_sends_them_back() -> None:
    twins = Twins()
    twins.hold("k", assignment("lead"))
    waiting = [f"t{i}" for i in range(AT_ONCE + 2)]
    for task_id in waiting:
        twins.hold("k", assignment(task_id))
    assert twins.ended("k", ANSWER) == []
    first = twins.to_serve()
    assert [a.task.id for a, _ in first] == waiting[:AT_ONCE]
    assert all(answer is ANSWER for _, answer in first)
    assert twins.to_serve() == []  # AT_ONCE are being served
    twins.served(waiting[0])
    assert [a.task.id for a, _ in twins.to_serve()] == [waiting[AT_ONCE]]
    twins.hold("j", assignment("lead2"))
    twins.hold("j", assignment("twin2"))
    assert [a.task.id for a in twins.ended("j", None)] == ["twin2"]  # no answer: they run
    assert not twins.hold("j", assignment("later"))  # nothing of "j" runs any more
