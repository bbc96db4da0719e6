"""The scheduler: limits, order, dependencies, retries, health-driven reassignment and probes."""

from __future__ import annotations

import random

import pytest
from engine_clock import FakeClock

from vault_bmad.engine.decisions import Assignment
from vault_bmad.engine.health import AgentState, HealthMonitor
from vault_bmad.engine.scheduler import Scheduler
from vault_bmad.errors import DependencyCycle
from vault_bmad.model.definitions import AgentDef, Priority, TaskDef

TEAM = [
    AgentDef(
        id="architect",
        name="Winston",
        path="Agents/Architect.md",
        title="Architect",
        expertise=("architecture", "api design", "scalability", "security"),
        capacity=2,
    ),
    AgentDef(
        id="architect2",
        name="Ada",
        path="Agents/Second Architect.md",
        title="Architect",
        expertise=("architecture", "scalability", "infrastructure"),
        capacity=1,
    ),
    AgentDef(
        id="pm",
        name="John",
        path="Agents/PM.md",
        title="Product Manager",
        expertise=("prd", "roadmap", "user stories"),
        capacity=2,
    ),
    AgentDef(
        id="dev",
        name="James",
        path="Agents/Dev.md",
        title="Developer",
        expertise=("coding", "debugging"),
        capacity=3,
    ),
]


def task(task_id: str, title: str = "Zzyzx", **fields: object) -> TaskDef:
    return TaskDef(id=task_id, path=f"Tasks/{task_id}.md", title=title, **fields)  # type: ignore[arg-type]


def make(clock: FakeClock, **options: object) -> Scheduler:
    return Scheduler(TEAM, rng=random.Random(3), clock=clock, **options)  # type: ignore[arg-type]


def ids(assignments: list[Assignment]) -> list[str]:
    return [a.task.id for a in assignments]


def test_at_most_max_concurrent_run_and_no_agent_past_its_capacity() -> None:
    scheduler = make(FakeClock(), max_concurrent_agents=5)
    scheduler.submit([task(f"t{i}") for i in range(30)])
    first = scheduler.dispatch()
    assert len(first) == 5 and len(scheduler.running) == 5
    assert scheduler.dispatch() == []
    for agent in TEAM:
        assert scheduler.in_flight(agent.id) <= agent.capacity
    for done in first[:2]:
        scheduler.finish(done.task.id, ok=True, seconds=1.0)
    assert len(scheduler.dispatch()) == 2 and scheduler.queued_count == 23


def test_concurrency_follows_the_pool_within_the_maximum() -> None:
    scheduler = make(FakeClock(), max_concurrent_agents=6)
    scheduler.submit([task(f"t{i}") for i in range(20)])
    scheduler.set_concurrency(2)
    assert len(scheduler.dispatch()) == 2
    scheduler.set_concurrency(100)
    assert scheduler.concurrency == 6 and len(scheduler.dispatch()) == 4


def test_a_busy_named_agent_does_not_hold_up_other_work() -> None:
    scheduler = make(FakeClock())
    critical = [task(f"prd{i}", agent="pm", priority="critical") for i in range(5)]
    scheduler.submit([*critical, *(task(f"code{i}", agent="dev") for i in range(3))])
    started = scheduler.dispatch()
    assert sorted(ids(started)) == ["code0", "code1", "code2", "prd0", "prd1"]
    assert {a.agent_id for a in started if a.task.id.startswith("prd")} == {"pm"}
    assert scheduler.phase("prd4") == "queued" and scheduler.phase("prd0") == "running"


def test_work_is_served_by_priority_across_agents() -> None:
    scheduler = make(FakeClock(), max_concurrent_agents=1)
    scheduler.submit(
        [
            task("low", agent="dev", priority="low"),
            task("high", agent="pm", priority="high"),
            task("normal-crit", agent="architect", criticality=9),
            task("normal", agent="dev"),
        ]
    )
    order = []
    while started := scheduler.dispatch():
        order.append(started[0].task.id)
        scheduler.finish(started[0].task.id, ok=True, seconds=0.1)
    assert order == ["high", "normal-crit", "normal", "low"]


def test_dependencies_gate_work_and_a_failure_blocks_dependents() -> None:
    scheduler = make(FakeClock())
    change = scheduler.submit(
        [task("a"), task("b", depends_on=("a",)), task("c", depends_on=("b",)), task("x")]
    )
    assert set(change.queued) == {"a", "x"}
    assert sorted(ids(scheduler.dispatch())) == ["a", "x"]
    assert scheduler.phase("b") == "waiting"
    failed = scheduler.finish("a", ok=False, seconds=1.0, retry=False)
    assert {b.task_id: b.failed_task for b in failed.blocked} == {"b": "a", "c": "a"}
    assert scheduler.phase("a") == "failed" and scheduler.phase("c") == "blocked"
    blocked = scheduler.blocked("c")
    assert blocked is not None and "'a' failed" in blocked.reason
    scheduler.finish("x", ok=True, seconds=1.0)
    assert not scheduler.pending()


def test_submit_reads_statuses_done_releases_and_failed_blocked_invalid_block() -> None:
    scheduler = make(FakeClock())
    change = scheduler.submit(
        [
            task("brief", status="done"),
            task("prd", depends_on=("brief",)),
            task("bad", status="invalid"),
            task("after-bad", depends_on=("bad",)),
            task("broke", status="failed"),
            task("after-broke", depends_on=("broke",)),
            task("stuck", status="blocked"),
            task("after-stuck", depends_on=("stuck",)),
        ]
    )
    assert change.queued == ("prd",)
    assert sorted(b.task_id for b in change.blocked) == ["after-bad", "after-broke", "after-stuck"]
    assert scheduler.phase("brief") == "done" and scheduler.phase("prd") == "queued"


def test_a_failed_attempt_is_retried_then_fails_for_good() -> None:
    clock = FakeClock()
    never_out = HealthMonitor(threshold=0.0, clock=clock)  # retries alone, health aside
    scheduler = make(clock, default_retries=1, health=never_out, backoff_base=0.0)
    scheduler.submit([task("flaky", agent="dev", retries=2), task("after", depends_on=("flaky",))])
    attempts = []
    for _ in range(3):
        (assignment,) = scheduler.dispatch()
        attempts.append(assignment.attempt)
        change = scheduler.finish("flaky", ok=False, seconds=0.5)
    assert attempts == [1, 2, 3]
    assert not change.retry and [b.task_id for b in change.blocked] == ["after"]
    scheduler.submit([task("once", agent="dev")])  # the default: one retry
    scheduler.dispatch()
    assert scheduler.finish("once", ok=False, seconds=0.1).retry
    scheduler.dispatch()
    assert not scheduler.finish("once", ok=False, seconds=0.1).retry


def test_a_retry_waits_out_a_growing_jittered_backoff() -> None:
    clock = FakeClock()
    never_out = HealthMonitor(threshold=0.0, clock=clock)
    scheduler = make(clock, health=never_out, backoff_base=1.0, backoff_max=3.0)
    scheduler.submit([task("t", agent="dev", retries=4)])
    delays = []
    for _ in range(4):
        assert len(scheduler.dispatch()) == 1
        change = scheduler.finish("t", ok=False, seconds=0.0)
        assert change.retry and change.retry_at is not None
        assert scheduler.phase("t") == "queued" and scheduler.queued_count == 1
        assert scheduler.next_wakeup() == change.retry_at
        delays.append(change.retry_at - clock.now)
        clock.advance(delays[-1] - 0.001)
        assert scheduler.dispatch() == []  # not yet
        clock.now = change.retry_at
    assert 0.5 <= delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0
    assert all(1.5 <= d <= 3.0 for d in delays[2:])  # capped at backoff_max
    assert [a.attempt for a in scheduler.dispatch()] == [5]


def test_an_agent_that_fails_is_taken_out_its_work_reassigned_and_probed_back() -> None:
    clock = FakeClock()
    scheduler = make(clock)
    design = "Design the architecture for scalability"
    special = "Review the API design and security"  # only the first architect qualifies
    scheduler.submit(
        [
            task("d1", design, agent="architect"),
            task("d2", design, agent="architect"),
            task("d3", design, agent="architect"),
            task("api", special, agent="architect", priority="low"),
        ]
    )
    assert sorted(ids(scheduler.dispatch())) == ["d1", "d2"]  # architect is full
    scheduler.finish("d1", ok=False, seconds=1.0, retry=False)
    change = scheduler.finish("d2", ok=False, seconds=1.0, retry=False)
    assert [(c.agent_id, c.after) for c in change.health] == [("architect", AgentState.OUT)]
    assert set(change.reassigned) == {"d3", "api"}

    started = scheduler.dispatch()
    assert [(a.task.id, a.agent_id) for a in started] == [("d3", "architect2")]
    assert scheduler.phase("api") == "queued"  # no healthy agent qualifies: it waits
    assert scheduler.next_wakeup() == clock.now + 30.0

    clock.advance(30)
    (probe,) = scheduler.dispatch()
    assert (probe.task.id, probe.agent_id, probe.probe) == ("api", "architect", True)
    back = scheduler.finish("api", ok=True, seconds=1.0)
    assert [(c.before, c.after) for c in back.health] == [
        (AgentState.PROBING, AgentState.IN_SERVICE)
    ]
    scheduler.submit([task("d4", design, agent="architect")])
    assert [(a.task.id, a.agent_id) for a in scheduler.dispatch()] == [("d4", "architect")]


def test_a_failed_probe_restarts_the_cool_down() -> None:
    clock = FakeClock()
    scheduler = make(clock)
    scheduler.take_out("pm")
    scheduler.submit([task(f"prd{i}", "Write the PRD", agent="pm") for i in range(3)])
    assert scheduler.dispatch() == []  # nobody else qualifies
    clock.advance(30)
    (probe,) = scheduler.dispatch()
    assert probe.probe and probe.agent_id == "pm"
    change = scheduler.finish(probe.task.id, ok=False, seconds=1.0)
    assert change.retry and change.health[0].after is AgentState.OUT
    clock.advance(29)
    assert scheduler.dispatch() == []
    clock.advance(1)
    assert [a.probe for a in scheduler.dispatch()] == [True]


def test_unnamed_work_goes_to_the_expert_and_waits_for_one() -> None:
    scheduler = make(FakeClock())
    scheduler.submit([task("prd", "Write the PRD with the roadmap and user stories")])
    assert [(a.task.id, a.agent_id) for a in scheduler.dispatch()] == [("prd", "pm")]
    scheduler.take_out("pm")
    scheduler.submit([task("prd2", "Update the roadmap")])
    assert scheduler.dispatch() == [] and scheduler.phase("prd2") == "queued"


def test_update_reprioritises_and_cancel_blocks_dependents() -> None:
    scheduler = make(FakeClock(), max_concurrent_agents=1)
    scheduler.submit([task("a", agent="dev"), task("b", agent="dev"), task("c", depends_on=("a",))])
    assert scheduler.update(task("b", agent="dev", priority=Priority.CRITICAL))
    change = scheduler.cancel("a")
    assert [b.task_id for b in change.blocked] == ["c"]
    assert ids(scheduler.dispatch()) == ["b"]
    assert not scheduler.update(task("b", agent="dev"))  # running: nothing to re-queue
    with pytest.raises(ValueError):
        scheduler.cancel("b")


def test_removing_an_agent_reassigns_its_queued_work() -> None:
    scheduler = make(FakeClock())
    design = "Design the architecture for scalability"
    scheduler.submit([task(f"d{i}", design, agent="architect") for i in range(3)])
    change = scheduler.set_agents([a for a in TEAM if a.id != "architect"])
    assert set(change.reassigned) == {"d0", "d1", "d2"}
    assert [a.agent_id for a in scheduler.dispatch()] == ["architect2"]


def test_new_batches_join_and_raise_the_rank_of_queued_work() -> None:
    scheduler = make(FakeClock(), max_concurrent_agents=1)
    scheduler.submit([task("quick", agent="dev"), task("root", agent="dev")])
    scheduler.submit([task(f"next{i}", depends_on=("root",), complexity=20) for i in range(2)])
    assert ids(scheduler.dispatch()) == ["root"]  # it now heads 20 s of work
    change = scheduler.submit([task("late", depends_on=("old",))], done=["old"])
    assert change.queued == ("late",)
    with pytest.raises(DependencyCycle):
        scheduler.submit([task("x", depends_on=("y",)), task("y", depends_on=("x",))])


def test_history_feeds_the_predictor() -> None:
    scheduler = make(FakeClock())
    scheduler.submit([task("t", agent="dev", complexity=2, tags=("coding",))])
    scheduler.dispatch()
    scheduler.finish("t", ok=True, seconds=8.0)
    assert scheduler.predictor.predict("tag:coding", 1.0, "dev").seconds == 4.0
    scheduler.submit([task("u", agent="dev", complexity=3, tags=("coding",))])
    (assignment,) = scheduler.dispatch()
    assert assignment.predicted_seconds == 12.0 and assignment.timeout == 30.0


def test_queue_and_agents_can_be_inspected() -> None:
    clock = FakeClock()
    scheduler = make(clock, max_concurrent_agents=4)
    scheduler.submit(
        [
            task("later", agent="dev", priority="minimal"),
            task("first", agent="pm", priority="critical"),
            task("middle", agent="dev", criticality=5),
        ]
    )
    assert [item.task_id for item in scheduler.queued()] == ["first", "middle", "later"]
    scheduler.dispatch(limit=2)
    assert len(scheduler.running) == 2
    views = {c.agent_id: c for c in scheduler.candidates()}
    assert views["pm"].in_flight == 1 and views["dev"].in_flight == 1
    assert views["architect"].capacity == 2 and views["dev"].health == 1.0


def test_a_done_task_reopened_runs_again_and_its_waiting_dependents_wait_for_it() -> None:
    scheduler = make(FakeClock())
    scheduler.submit([task("a"), task("b", depends_on=("a",)), task("c", depends_on=("b",))])
    assert ids(scheduler.dispatch()) == ["a"]
    scheduler.finish("a", ok=True, seconds=1.0)
    assert ids(scheduler.dispatch()) == ["b"]
    scheduler.finish("b", ok=True, seconds=1.0)
    assert scheduler.phase("c") == "queued"
    change = scheduler.reopen(task("b", depends_on=("a",)))
    assert change.queued == ("b",)
    assert scheduler.phase("c") == "waiting"  # taken out of the queue until b is done again
    assert ids(scheduler.dispatch()) == ["b"]
    with pytest.raises(ValueError, match="has not finished"):
        scheduler.reopen(task("b"))
    scheduler.finish("b", ok=True, seconds=1.0)
    assert ids(scheduler.dispatch()) == ["c"]


def test_a_failed_task_reopened_with_a_failed_dependency_is_blocked_again() -> None:
    scheduler = make(FakeClock())
    scheduler.submit([task("a", status="failed"), task("b", status="failed")])
    assert scheduler.knows("a") and not scheduler.knows("zz")
    change = scheduler.reopen(task("b", depends_on=("a",)))
    assert [blocked.task_id for blocked in change.blocked] == ["b"]
    assert scheduler.phase("b") == "blocked"
    assert scheduler.reopen(task("a")).queued == ("a",)


def test_a_held_task_frees_its_slot_spends_no_attempt_and_comes_back_in_its_place() -> None:
    scheduler = make(FakeClock(), max_concurrent_agents=1)
    scheduler.submit([task("twin", agent="dev"), task("next", agent="dev", priority="low")])
    (first,) = scheduler.dispatch()
    scheduler.hold("twin")  # an identical request is running: wait for its cached result
    assert scheduler.phase("twin") == "queued" and scheduler.queued_count == 2
    assert scheduler.in_flight("dev") == 0 and not scheduler.running
    assert ids(scheduler.dispatch()) == ["next"]  # the slot went to other work
    scheduler.unhold("twin")
    scheduler.finish("next", ok=True, seconds=1.0)
    (again,) = scheduler.dispatch()
    assert again.task.id == "twin" and again.attempt == first.attempt == 1


def test_a_held_task_served_its_twins_answer_needs_no_slot_and_finishes_once() -> None:
    scheduler = make(FakeClock(), max_concurrent_agents=1)
    scheduler.submit([task("twin", agent="dev"), task("next", agent="dev", priority="low")])
    scheduler.submit([task("after", agent="dev", depends_on=("twin",))])
    (first,) = scheduler.dispatch()
    scheduler.hold("twin")
    assert ids(scheduler.dispatch()) == ["next"]  # every slot of the one allowed is taken
    served = scheduler.serve_held("twin", "dev")
    assert served is not None and served.attempt == first.attempt == 1
    scheduler.release("twin")  # the caller releases it at once: only its note is written
    assert scheduler.in_flight("dev") == 1 and scheduler.phase("twin") == "running"
    assert scheduler.serve_held("twin", "dev") is None  # no longer held
    change = scheduler.finish("twin", ok=True, seconds=0.0, measured=False)
    assert change.queued == ("after",) and scheduler.phase("twin") == "done"


def test_a_released_task_frees_its_slot_but_runs_until_it_finishes() -> None:
    scheduler = make(FakeClock(), max_concurrent_agents=1)
    scheduler.submit([task("first", agent="dev"), task("second", agent="dev", depends_on=())])
    scheduler.submit([task("after", agent="dev", depends_on=("first",))])
    assert ids(scheduler.dispatch()) == ["first"]
    scheduler.release("first")  # its attempt is over; its output is being written
    assert scheduler.phase("first") == "running" and scheduler.pending()
    assert scheduler.in_flight("dev") == 0
    with pytest.raises(ValueError, match="running"):
        scheduler.cancel("first")
    assert ids(scheduler.dispatch()) == ["second"]  # the slot went to other work
    assert scheduler.phase("after") == "waiting"  # not before `first` is finished
    change = scheduler.finish("first", ok=True, seconds=1.0)
    assert change.queued == ("after",) and scheduler.phase("first") == "done"
    assert scheduler.predictor.predict(task("x").kind, 1.0, "dev").basis in ("agent+kind", "agent")


def test_a_cache_hit_says_nothing_of_the_agents_speed_or_health() -> None:
    scheduler = make(FakeClock())
    scheduler.submit([task("hit", agent="dev"), task("call", agent="pm")])
    scheduler.dispatch()
    scheduler.finish("hit", ok=True, seconds=0.001, measured=False)
    scheduler.finish("call", ok=True, seconds=6.0)
    assert scheduler.predictor.predict("task", agent_id="dev").basis != "agent"
    assert scheduler.health.snapshot("dev").attempts == 0
    assert scheduler.predictor.predict("task", agent_id="pm").seconds == pytest.approx(6.0)


def test_a_failure_that_says_nothing_of_the_agent_leaves_its_health_alone() -> None:
    scheduler = make(FakeClock())
    scheduler.submit([task(f"t{i}", agent="dev") for i in range(3)])
    for assignment in scheduler.dispatch():
        scheduler.finish(assignment.task.id, ok=False, seconds=1.0, retry=False, measured=False)
    assert scheduler.health.in_service("dev") and scheduler.health.snapshot("dev").attempts == 0


def test_an_inconclusive_probe_keeps_the_agent_out_and_probes_again_at_once() -> None:
    clock = FakeClock()
    scheduler = make(clock)
    scheduler.take_out("pm", "its server is down")
    scheduler.submit([task(f"prd{i}", "Write the PRD", agent="pm") for i in range(2)])
    clock.advance(30)
    (probe,) = scheduler.dispatch()
    change = scheduler.finish(probe.task.id, ok=False, seconds=0.1, retry=False, measured=False)
    assert change.health[0].after is AgentState.OUT
    (again,) = scheduler.dispatch()  # no second cool-down for the task's own fault
    assert again.probe and again.agent_id == "pm"


def test_a_retry_waits_at_least_what_the_server_asked() -> None:
    clock = FakeClock()
    scheduler = make(clock, backoff_base=0.5)
    scheduler.submit([task("t", agent="dev", retries=1)])
    scheduler.dispatch()
    change = scheduler.finish("t", ok=False, seconds=0.1, wait_at_least=7.0)
    assert change.retry and change.retry_at == clock.now + 7.0


def test_giving_up_on_agents_fails_what_only_they_could_take() -> None:
    clock = FakeClock()
    scheduler = make(clock)
    scheduler.submit(
        [
            task("prd", "Write the PRD", agent="pm"),
            task("code", "Fix the coding bug", agent="dev"),
            task("after", "Write more", agent="pm", depends_on=("prd",)),
            task("later", "Write the roadmap", agent="pm", depends_on=("code",)),
        ]
    )
    scheduler.take_out("pm", "down")
    change = scheduler.give_up(["pm"], "gave up on its server")
    assert change.failed == ("prd",)
    assert [b.task_id for b in change.blocked] == ["after"]
    assert scheduler.phase("prd") == "failed" and scheduler.phase("code") == "queued"
    clock.advance(60)
    assert [(a.task.id, a.probe) for a in scheduler.dispatch()] == [("code", False)]  # no probe
    scheduler.finish("code", ok=True, seconds=1.0)
    assert scheduler.phase("later") == "queued"  # ready now, yet only pm could take it
    assert scheduler.give_up(["pm"], "gave up on its server").failed == ("later",)
    assert not scheduler.pending()


def test_tasks_no_agent_runs_take_no_slot_and_end_by_the_caller() -> None:
    scheduler = make(FakeClock(), max_concurrent_agents=1)
    guide = task("run/guide", guidance=True, depends_on=("run/skip",))
    skipped = task("run/skip", status="skipped", skipped_because="its condition is not named")
    work = task("run/work", agent="pm", depends_on=("run/guide",))
    run = task("run", steps=("run/skip", "run/guide", "run/work"), depends_on=("run/work",))
    change = scheduler.submit([skipped, guide, work, run])
    assert change.skipped == ("run/skip",)
    assert change.queued == ("run/guide",)
    assert scheduler.dispatch() == []  # no agent takes a guidance step
    assert [t.id for t in scheduler.take_agentless()] == ["run/guide"]
    assert scheduler.phase("run/guide") == "running" and scheduler.take_agentless() == []
    assert scheduler.end_agentless("run/guide", ok=True).queued == ("run/work",)
    [assignment] = scheduler.dispatch()
    assert (assignment.task.id, assignment.agent_id) == ("run/work", "pm")
    assert scheduler.finish("run/work", ok=True, seconds=1.0).queued == ("run",)
    assert [t.id for t in scheduler.take_agentless()] == ["run"]
    scheduler.end_agentless("run", ok=True)
    assert not scheduler.pending()


def test_alternatives_go_only_to_the_agents_named() -> None:
    scheduler = make(FakeClock())
    scheduler.submit(
        [task(f"t{n}", "architecture api design", alternatives=("pm", "dev")) for n in range(4)]
    )
    assert {a.agent_id for a in scheduler.dispatch()} <= {"pm", "dev"}
