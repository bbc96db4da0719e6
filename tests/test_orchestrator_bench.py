"""benchmarks/orchestrator_bench.py: its workload, simulated runtime, bounds and both systems,
run for real on small, fast workloads."""

from __future__ import annotations

import random
import statistics
import sys
import threading
from pathlib import Path

import frontmatter
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))

import orchestrator_bench as bench  # noqa: E402
from orchestrator_workload import (  # noqa: E402
    FLEET,
    AgentSpec,
    Degradation,
    SimulatedRuntime,
    Workload,
    eligible_agents,
    list_schedule,
    lower_bound,
    make_workload,
    scaled,
    write_vault,
)

from vault_bmad.engine.balancer import Balancer  # noqa: E402
from vault_bmad.errors import RuntimeUnavailable  # noqa: E402
from vault_bmad.model.validate import build_definitions  # noqa: E402
from vault_bmad.runtimes.base import RunRequest  # noqa: E402
from vault_bmad.vault.index import VaultIndex  # noqa: E402

PAIR = (
    AgentSpec("fast", 0.5, 1, 2.0, ("architecture", "design"), "Architect"),
    AgentSpec("slow", 1.0, 1, 1.0, ("testing", "docs"), "Tester"),
)


class ManualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def request(task_id: str, agent_id: str) -> RunRequest:
    return RunRequest(
        task_id, task_id, "template", agent_id, "", "", (), (), None, None, None, (), 5
    )


def small(seed: int, n: int) -> Workload:
    """A workload whose tasks take 1-20 ms, so a real run is quick."""
    return scaled(make_workload(seed, n), 1 / 20)


def test_lower_bound_takes_the_larger_of_critical_path_and_weighted_work() -> None:
    workload = Workload({"a": 1.0, "b": 1.0, "c": 2.0}, {"a": (), "b": ("a",), "c": ()}, {}, {})
    bound = lower_bound(workload, PAIR, concurrency=2)
    assert bound.critical_path_s == pytest.approx((1.0 + 1.0) * 0.5)  # a then b, at best speed
    assert bound.work_over_capacity_s == pytest.approx(4.0 / (1 / 0.5 + 1 / 1.0))
    assert bound.seconds == bound.work_over_capacity_s
    only_fastest = lower_bound(workload, PAIR, concurrency=1)
    assert only_fastest.work_over_capacity_s == pytest.approx(4.0 / 2.0)


@pytest.mark.parametrize("seed", range(4))
def test_list_schedule_never_beats_the_lower_bound(seed: int) -> None:
    workload = make_workload(seed, 80)
    slots = sum(agent.capacity for agent in FLEET)
    reference = list_schedule(workload, FLEET)
    assert reference >= lower_bound(workload, FLEET, slots).seconds - 1e-9
    assert reference <= sum(workload.base_s.values()) * max(a.slowness for a in FLEET)


def test_eligible_agents_are_the_ones_the_balancer_lets_take_each_task(tmp_path: Path) -> None:
    workload = make_workload(3, 60)
    write_vault(tmp_path / "vault", workload, FLEET)
    definitions = build_definitions(VaultIndex.load(tmp_path / "vault"))
    assert definitions.problems == ()
    assert set(definitions.tasks) == set(workload.deps)
    balancer = Balancer(definitions.agents.values())
    for task_id, task in definitions.tasks.items():
        assert task.depends_on == workload.deps[task_id]
        if task.agent is None:
            assert balancer.qualifying(task) == set(eligible_agents(workload, task_id, FLEET))
        else:
            assert [task.agent] == eligible_agents(workload, task_id, FLEET)


def test_degrading_agent_goes_slow_then_fails_then_recovers() -> None:
    clock = ManualClock()
    slept: list[float] = []
    plan = Degradation("fast", after_calls=2, slow_factor=5.0, slow_s=1.0, error_s=1.0)
    runtime = SimulatedRuntime({"t": 0.1}, PAIR, plan, clock=clock, sleep=slept.append)
    runtime.run(request("t", "fast"))
    runtime.run(request("t", "fast"))
    runtime.run(request("t", "slow"))  # other agents never degrade
    runtime.run(request("t", "fast"))  # the third call of "fast": slow from now
    assert slept == pytest.approx([0.05, 0.05, 0.1, 0.25])
    clock.now = 1.5
    with pytest.raises(RuntimeUnavailable):
        runtime.run(request("t", "fast"))
    clock.now = 2.5
    runtime.run(request("t", "fast"))
    assert slept[-1] == pytest.approx(0.05)
    assert [call.ok for call in runtime.calls] == [True, True, True, True, False, True]


def test_an_agent_runs_no_more_calls_at_once_than_its_capacity() -> None:
    lock = threading.Lock()
    inside, most = 0, 0
    gate = threading.Event()

    def sleep(seconds: float) -> None:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        gate.wait(0.02)
        with lock:
            inside -= 1

    runtime = SimulatedRuntime({"t": 0.01}, PAIR, Degradation(after_calls=10**9), sleep=sleep)
    threads = [threading.Thread(target=runtime.run, args=(request("t", "slow"),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most == 1  # "slow" has capacity 1
    assert len(runtime.calls) == 4


def test_percentile_agrees_with_statistics() -> None:
    rng = random.Random(7)
    for size in (1, 2, 5, 50):
        values = [rng.random() for _ in range(size)]
        assert bench.percentile(values, 0.5) == pytest.approx(statistics.median(values))
        assert bench.percentile(values, 1.0) == max(values)
        assert bench.percentile(values, 0.0) == min(values)


def assert_dependency_order(outcome: bench.RunOutcome, workload: Workload) -> None:
    done = {call.task_id: call for call in outcome.calls if call.ok}
    assert set(done) == set(workload.deps)
    for task_id, needs in workload.deps.items():
        for need in needs:
            assert done[task_id].started >= done[need].ended, (task_id, need)


@pytest.mark.parametrize("system", ["adaptive", "round_robin", bench.POOL])
def test_each_system_runs_the_whole_dag_in_dependency_order(tmp_path: Path, system: str) -> None:
    workload = small(1, 30)
    plan = Degradation("bo", after_calls=1, slow_s=0.01, error_s=0.05, error_delay_s=0.001)
    outcome = bench.run_system(system, workload, plan, tmp_path / "vault")
    assert outcome.unfinished == 0
    assert_dependency_order(outcome, workload)
    row = bench.figures(outcome, workload)
    assert 0 < row["task_latency_p50_ms"] <= row["task_latency_p95_ms"]
    assert row["failed_attempts"] == sum(1 for call in outcome.calls if not call.ok)
    assert outcome.makespan_s >= lower_bound(workload, FLEET, 12).seconds
    if system != bench.POOL:  # the orchestrator wrote every task's end state into its note
        note = frontmatter.load(tmp_path / "vault" / "Tasks" / "T029.md")
        assert note["status"] == "done"
        assert str(note["result"]).startswith("[[")


def test_thread_pool_retries_a_failed_call_on_another_agent() -> None:
    workload = small(2, 24)
    always_failing = Degradation("bo", after_calls=0, slow_s=0.0, error_s=60.0, error_delay_s=0)
    runtime = SimulatedRuntime(workload.base_s, FLEET, always_failing)
    outcome = bench.run_thread_pool(workload, FLEET, runtime)
    assert_dependency_order(outcome, workload)
    failed = [call for call in outcome.calls if not call.ok]
    assert failed and all(call.agent_id == "bo" for call in failed)
    assert not any(call.ok and call.agent_id == "bo" for call in outcome.calls)
