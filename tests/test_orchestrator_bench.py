"""The orchestrator benchmark's parts (vault_bmad/bench/orchestrator_runs.py, simulated_fleet.py
and the spec's list schedule), run for real on small, fast workloads."""

from __future__ import annotations

import threading
from pathlib import Path

import frontmatter
import pytest

from tests.waiting import WAIT_S
from vault_bmad.bench.orchestrator_runs import POOL, RunOutcome, figures, run_system
from vault_bmad.bench.simulated_fleet import SimulatedFleet
from vault_bmad.bench.workload_spec import (
    FLEET,
    BenchTask,
    Degradation,
    base_latency_s,
    eligible,
    list_schedule,
    lower_bound,
    make_tasks,
    slot_count,
    write_vault,
)
from vault_bmad.engine.balancer import Balancer
from vault_bmad.errors import RuntimeUnavailable
from vault_bmad.model.validate import build_definitions
from vault_bmad.runtimes.base import RunRequest
from vault_bmad.vault.index import VaultIndex

SCALE = 0.002  # a median call of 4 ms
NEVER = Degradation(after_calls=10**9)


def request(agent_id: str, marker: str = "q1") -> RunRequest:
    body = f"Answer the question of item {marker}."
    return RunRequest("t", "t", "llm", agent_id, "", body, (), (), None, None, None, (), 5)


@pytest.mark.parametrize("seed", range(4))
def test_the_list_schedule_never_beats_the_lower_bound(seed: int) -> None:
    tasks = make_tasks(seed, 80)
    reference = list_schedule(tasks)
    assert reference >= lower_bound(tasks).seconds - 1e-9
    slowest = max(agent.slowness for agent in FLEET)
    assert reference <= sum(base_latency_s(t.marker) for t in tasks) * slowest


def test_the_list_schedule_serves_a_repeated_request_once() -> None:
    once = (BenchTask("a", "x", "hu", None, ()),)
    twice = (*once, BenchTask("b", "x", "hu", None, ()))  # hu has one slot
    assert list_schedule(twice) == list_schedule(once) == base_latency_s("x") * 2.0


def test_eligible_agents_are_the_ones_the_balancer_lets_take_each_task(tmp_path: Path) -> None:
    tasks = make_tasks(3, 60)
    write_vault(tmp_path / "vault", tasks)
    definitions = build_definitions(VaultIndex.load(tmp_path / "vault"))
    assert definitions.problems == ()
    balancer = Balancer(definitions.agents.values())
    for task in tasks:
        allowed = {agent.id for agent in eligible(task)}
        defined = definitions.tasks[f"tasks/{task.id}"]
        if defined.agent is None:
            assert balancer.qualifying(defined) == allowed, task
        else:
            assert {defined.agent} == allowed
    weights = {agent.id: agent.weight for agent in definitions.agents.values()}
    assert weights["ada"] == 6.0 and weights["jo"] == pytest.approx(0.33)


def test_the_degrading_agent_goes_slow_then_fails_then_recovers() -> None:
    slept: list[float] = []
    plan = Degradation("ed", after_calls=1, slow_calls=1, slow_factor=4.0, failing_calls=1)
    fleet = SimulatedFleet(1.0, plan, sleep=slept.append)
    well = base_latency_s("q1")  # ed's slowness is 1
    fleet.run(request("ed"))
    fleet.run(request("ada"))  # other agents never degrade
    fleet.run(request("ed"))  # the second call of ed: slow
    with pytest.raises(RuntimeUnavailable):
        fleet.run(request("ed"))
    fleet.run(request("ed"))
    assert slept == pytest.approx([well, well * 0.5, well * 4, well * 0.02, well])
    assert [call.ok for call in fleet.calls] == [True, True, True, False, True]
    assert {call.marker for call in fleet.calls} == {"q1"}


def test_an_agent_runs_no_more_calls_at_once_than_its_capacity() -> None:
    changed = threading.Condition()
    inside, most = 0, 0

    def sleep(seconds: float) -> None:  # a call stays until three are in, however slow
        nonlocal inside, most
        with changed:
            inside += 1
            most = max(most, inside)
            changed.notify_all()
            changed.wait_for(lambda: most >= 3, timeout=WAIT_S)
            changed.wait(0.02)  # a fourth, let in wrongly, would come in meanwhile
            inside -= 1

    fleet = SimulatedFleet(SCALE, NEVER, sleep=sleep)
    threads = [threading.Thread(target=fleet.run, args=(request("ada"),)) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 3  # ada has capacity 3
    assert len(fleet.calls) == 6


def assert_dependency_order(outcome: RunOutcome, tasks: tuple[BenchTask, ...]) -> None:
    done = {call.marker: call for call in outcome.calls if call.ok}
    assert {t.marker for t in tasks} <= set(done)  # each request answered at least once
    for task in tasks:
        for need in task.requires:
            assert done[task.marker].started >= done[need].ended, (task.id, need)


@pytest.mark.parametrize("system", ["adaptive", "round_robin", POOL])
def test_each_system_runs_the_whole_workload_in_dependency_order(
    tmp_path: Path, system: str
) -> None:
    tasks = make_tasks(0, 30)  # two workflows, and requests to the degrading agent
    assert any(t.requires for t in tasks) and any(t.agent == "ed" for t in tasks)
    plan = Degradation(after_calls=1, slow_calls=1, failing_calls=1)
    outcome = run_system(system, tasks, SimulatedFleet(SCALE, plan), tmp_path / "vault")
    assert outcome.unfinished == 0
    assert_dependency_order(outcome, tasks)
    row = figures(outcome, tasks)
    assert 0 < row["step_latency_p50_ms"] <= row["step_latency_p95_ms"]
    assert row["failed_attempts"] == sum(1 for call in outcome.calls if not call.ok)
    assert row["calls"] >= len({(t.marker, t.agent) for t in tasks})
    assert outcome.makespan_s >= lower_bound(tasks).seconds * SCALE
    if system != POOL:  # the orchestrator wrote every task's end state into its note
        note = frontmatter.load(tmp_path / "vault" / "Tasks" / f"{tasks[-1].id}.md")
        assert note["status"] == "done"
        assert str(note["result"]).startswith("[[")
        assert row["calls"] == len({(t.marker, t.agent) for t in tasks})  # repeats: cache hits


def test_the_thread_pool_fails_over_to_the_next_eligible_agent(tmp_path: Path) -> None:
    tasks = (BenchTask("s", "s", None, "data", ()),)
    assert [agent.id for agent in eligible(tasks[0])] == ["di", "ed", "hu", "jo"]
    fleet = SimulatedFleet(SCALE, Degradation("di", after_calls=0, slow_calls=0, failing_calls=1))
    outcome = run_system(POOL, tasks, fleet, tmp_path / "unused")
    assert [(call.agent_id, call.ok) for call in outcome.calls] == [("di", False), ("ed", True)]
    assert outcome.unfinished == 0
    assert slot_count() == sum(agent.capacity for agent in FLEET)


def test_the_thread_pool_fails_a_task_every_agent_failed_and_blocks_what_requires_it(
    tmp_path: Path,
) -> None:
    tasks = (
        BenchTask("a", "a", "ed", None, ()),
        BenchTask("b", "b", None, "data", ("a",)),
        BenchTask("c", "c", None, "data", ()),
    )
    broken = Degradation("ed", after_calls=0, slow_calls=0, failing_calls=10**9)
    outcome = run_system(POOL, tasks, SimulatedFleet(SCALE, broken), tmp_path / "unused")
    assert outcome.unfinished == 2
    assert [(c.marker, c.ok) for c in outcome.calls if c.agent_id == "ed"] == [("a", False)] * 2
    assert [c.marker for c in outcome.calls if c.ok] == ["c"]  # b never ran
