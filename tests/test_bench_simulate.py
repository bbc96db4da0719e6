"""The discrete-event simulator, and critical-path-first against FIFO on DAGs."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from engine_clock import FakeClock
from hypothesis import given, settings
from hypothesis import strategies as st

from vault_bmad.bench.simulate import (
    SimulationResult,
    lower_bound,
    simulate,
    simulate_dag,
)
from vault_bmad.engine.scheduler import Scheduler
from vault_bmad.model.definitions import AgentDef, TaskDef


def chain_and_pairs() -> tuple[dict[str, list[str]], dict[str, float]]:
    """A 4-step chain of 10 s tasks behind six pairs of 5 s tasks that FIFO sees first."""
    deps: dict[str, list[str]] = {}
    durations: dict[str, float] = {}
    for i in range(6):
        deps[f"s{i}"], deps[f"t{i}"] = [], [f"s{i}"]
        durations[f"s{i}"] = durations[f"t{i}"] = 5.0
    for i in range(4):
        deps[f"L{i}"] = [f"L{i - 1}"] if i else []
        durations[f"L{i}"] = 10.0
    return deps, durations


def test_critical_path_first_beats_fifo_where_it_matters() -> None:
    deps, durations = chain_and_pairs()
    fifo = simulate_dag(deps, durations, workers=2, policy="fifo")
    critical = simulate_dag(deps, durations, workers=2, policy="critical_path")
    bound = lower_bound(deps, durations, workers=2)
    assert bound == 50.0  # max(critical path 40, work 100 / 2)
    assert critical.makespan == bound
    # FIFO: the shorts fill 0-15 s, L0 runs 15-25 s, and each later link of the chain queues
    # behind the pairs' second halves, ready since 5-15 s: L1 35-45, L2 45-55, L3 55-65.
    assert fifo.makespan == 65.0
    assert critical.utilization == 1.0 and fifo.utilization < 1.0


def check_schedule(
    result: SimulationResult, deps: dict[str, list[str]], durations: dict[str, float]
) -> None:
    assert set(result.finishes) == set(deps)
    for task_id, start in result.starts.items():
        assert result.finishes[task_id] == start + durations[task_id]
        assert all(result.finishes[d] <= start for d in deps[task_id])
    events = sorted(
        [(t, 1) for t in result.starts.values()] + [(t, -1) for t in result.finishes.values()],
        key=lambda e: (e[0], e[1]),
    )
    running = 0
    for _, step in events:
        running += step
        assert running <= result.workers


@st.composite
def dags(draw: st.DrawFn) -> tuple[dict[str, list[str]], dict[str, float], int]:
    n = draw(st.integers(1, 14))
    deps = {
        f"t{i}": sorted(
            {f"t{j}" for j in draw(st.lists(st.integers(0, max(0, i - 1)), max_size=3)) if j < i}
        )
        for i in range(n)
    }
    durations = {t: float(draw(st.integers(1, 20))) for t in deps}
    return deps, durations, draw(st.integers(1, 4))


@settings(max_examples=120, deadline=None)
@given(dags(), st.sampled_from(["fifo", "critical_path"]))
def test_any_list_schedule_is_valid_and_within_grahams_bound(
    case: tuple[dict[str, list[str]], dict[str, float], int], policy: str
) -> None:
    deps, durations, workers = case
    result = simulate_dag(deps, durations, workers, policy)  # type: ignore[arg-type]
    check_schedule(result, deps, durations)
    bound = lower_bound(deps, durations, workers)
    critical = lower_bound(deps, durations, 10**9)  # the critical path alone
    assert bound <= result.makespan
    # Graham: a list schedule never idles a worker needlessly.
    assert (
        result.makespan <= sum(durations.values()) / workers + critical * (1 - 1 / workers) + 1e-9
    )


class SchedulerOnSimulatedTime:
    """Drives the real Scheduler in the simulator, its clock set to simulated time."""

    def __init__(self, scheduler: Scheduler, clock: FakeClock, durations: dict[str, float]) -> None:
        self.scheduler, self.clock, self.durations = scheduler, clock, durations

    def start(self, free: int, now: float) -> Sequence[str]:
        self.clock.now = now
        return [a.task.id for a in self.scheduler.dispatch(limit=free)]

    def finish(self, task_id: str, now: float) -> None:
        self.clock.now = now
        self.scheduler.finish(task_id, ok=True, seconds=self.durations[task_id])


def run_scheduler(rank_weight: float) -> SimulationResult:
    deps, durations = chain_and_pairs()
    clock = FakeClock(start=0.0)
    agent = AgentDef(id="worker", name="Worker", path="Agents/Worker.md", capacity=2)
    scheduler = Scheduler([agent], max_concurrent_agents=2, rank_weight=rank_weight, clock=clock)
    # complexity carries the duration: with no history the predictor says 1 s per unit.
    tasks = [
        TaskDef(
            id=t, path=f"Tasks/{t}.md", title=t, depends_on=tuple(deps[t]), complexity=durations[t]
        )
        for t in deps
    ]
    scheduler.submit(tasks)
    result = simulate(SchedulerOnSimulatedTime(scheduler, clock, durations), durations, workers=2)
    check_schedule(result, deps, durations)
    assert not scheduler.pending()
    return result


def test_the_real_scheduler_puts_the_critical_path_first() -> None:
    deps, durations = chain_and_pairs()
    with_ranks = run_scheduler(rank_weight=1.0)
    without = run_scheduler(rank_weight=0.0)
    assert with_ranks.makespan == lower_bound(deps, durations, 2) == 50.0
    assert without.makespan > with_ranks.makespan
    assert with_ranks.start_order[0] == "L0"


def test_simulator_refuses_no_workers() -> None:
    deps, durations = chain_and_pairs()
    with pytest.raises(ValueError):
        simulate_dag(deps, durations, workers=0)
