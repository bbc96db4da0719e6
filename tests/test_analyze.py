"""The analyzer on hand-built attempts whose figures and bottlenecks are known."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from vault_bmad.metrics.analyze import Analysis, Thresholds, analyze, percentile
from vault_bmad.metrics.histogram import RELATIVE_ERROR
from vault_bmad.metrics.records import AgentChange, Attempt, CacheSample


def attempt(
    task: str,
    agent: str,
    queued: float,
    started: float,
    ended: float,
    status: str = "done",
    cache: str = "miss",
    *,
    runtime: str = "template",
    error: str | None = None,
) -> Attempt:
    return Attempt(task, agent, runtime, 1, status, queued, started, ended, error, cache)


def back_to_back(agent: str, count: int, run_s: float, start: float = 0.0) -> list[Attempt]:
    """`count` attempts of `run_s` seconds each, one after another, none waiting."""
    return [
        attempt(
            f"{agent}-{n}", agent, start + n * run_s, start + n * run_s, start + (n + 1) * run_s
        )
        for n in range(count)
    ]


def kinds(analysis: Analysis) -> set[str]:
    return {b.kind for b in analysis.bottlenecks}


def near(binned: float | None, exact: float) -> bool:
    """A percentile read from the histogram, against the exact one."""
    return binned is not None and abs(binned - exact) <= exact * RELATIVE_ERROR * 1.0001


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(20, 0, -1)]  # 20 .. 1, unsorted on purpose
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile(values, 99) == 20.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0  # no interpolation
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_overall_and_agent_figures() -> None:
    attempts = [
        attempt("t1", "a", queued=0, started=1, ended=3),  # latency 3, wait 1
        attempt("t2", "a", queued=10, started=10, ended=14),  # latency 4, wait 0
        attempt("t3", "b", queued=20, started=22, ended=23, status="failed"),  # 3, wait 2
        attempt("late", "a", 590, 595, 600),  # ends at `until`: outside [since, until)
        attempt("early", "a", -9, -8, -1),  # ended before the period
        attempt("run", "a", 30, 30, 31, runtime="workflow"),  # bookkeeping, not agent work
    ]
    result = analyze(attempts, since=0, until=600, capacities={"a": 2, "b": 1, "idle": 1})
    o = result.overall
    assert (o.attempts, len(result.tasks), o.done, o.failed) == (3, 3, 2, 1)
    assert o.error_rate == pytest.approx(1 / 3)
    assert o.work_s == pytest.approx(3 + 4 + 3)  # queued or running: 0-3, 10-14, 20-23
    assert o.throughput_per_min == pytest.approx(2 / 10 * 60)  # 2 done in 10 s of work
    assert near(o.latency_s["p50"], 3.0) and near(o.latency_s["p95"], 4.0)
    assert near(o.latency_s["p99"], 4.0)
    assert o.latency_mean_s == pytest.approx(10 / 3)
    assert o.wait_share == pytest.approx(3 / 10)
    assert o.mean_wait_s == pytest.approx(1.0)
    assert o.hit_rate == 0.0
    assert o.utilization == pytest.approx((2 + 4 + 1) / (2 * 7 + 1 * 3))
    agents = {a.agent: a for a in result.agents}
    assert list(agents) == ["a", "b", "idle"]
    assert (agents["a"].busy_s, agents["a"].work_s) == pytest.approx((6.0, 7.0))
    assert agents["a"].utilization == pytest.approx(6 / (2 * 7))
    assert (agents["b"].failed, agents["b"].error_rate) == (1, 1.0)
    assert agents["b"].wait_share == pytest.approx(2 / 3)
    assert (agents["idle"].attempts, agents["idle"].utilization) == (0, None)
    assert agents["idle"].latency_s == {}
    assert [t.task_id for t in result.tasks] == ["t1", "t2", "t3"]


def test_utilization_counts_only_the_time_the_agent_had_work() -> None:
    """A capacity-1 agent kept busy by 8 one-second tasks reads near 1 however long the
    period around them, and throughput counts the 8 seconds of work, not the hour."""
    runs = [attempt(f"t{n}", "solo", 100, 100 + n, 101 + n) for n in range(8)]
    result = analyze(runs, since=0, until=3600, capacities={"solo": 1})
    (solo,) = result.agents
    assert solo.utilization == pytest.approx(1.0)
    assert result.overall.throughput_per_min == pytest.approx(8 / 8 * 60)


def test_a_retried_task_is_one_row_ending_with_its_last_attempt() -> None:
    first = attempt("t", "a", queued=0, started=1, ended=3, status="failed")
    second = Attempt("t", "b", "template", 2, "done", 0, 5, 6, None, "miss")
    result = analyze([second, first], since=0, until=60, capacities={})
    (task,) = result.tasks
    assert (task.agent, task.status, task.attempts) == ("b", "done", 2)
    assert (task.started, task.ended, task.run_s, task.span_s) == (1, 6, 3.0, 5.0)
    assert (task.last_started, task.last_run_s) == (5, 1.0)
    assert (result.overall.attempts, len(result.tasks)) == (2, 1)


def test_busy_time_is_clipped_to_the_period() -> None:
    result = analyze(
        [attempt("t", "a", queued=-10, started=-5, ended=5)], since=0, until=10, capacities={}
    )
    assert result.agents[0].busy_s == pytest.approx(5.0)
    assert result.agents[0].work_s == pytest.approx(5.0)  # its queued time before 0 too
    assert result.agents[0].capacity == 1  # an agent missing from capacities counts as 1
    assert result.overall.utilization == pytest.approx(1.0)


def test_hit_rate_by_level_from_the_level_that_served_each_attempt() -> None:
    served = ["L1"] * 6 + ["L2"] * 2 + ["miss"] * 2
    attempts = [attempt(f"t{n}", "a", n, n, n + 0.5, cache=c) for n, c in enumerate(served)]
    result = analyze(attempts, since=0, until=60, capacities={"a": 1})
    levels = [(lv.level, lv.hits, lv.misses, lv.hit_rate, lv.source) for lv in result.levels]
    assert levels == [("L1", 6, 4, 0.6, "attempts"), ("L2", 2, 2, 0.5, "attempts")]
    assert result.overall.hit_rate == pytest.approx(0.8)


def test_hit_rate_by_level_from_counter_increases_across_a_restart() -> None:
    samples = [
        CacheSample("L1", hits=0, misses=0, evictions=0, expirations=0, size=0, at=-5),  # before
        CacheSample("L1", 100, 50, 0, 0, 10, at=10),
        CacheSample("L1", 130, 60, 0, 0, 10, at=70),
        CacheSample("L1", 5, 5, 0, 0, 10, at=130),  # the counters restarted: +5 hits, +5 misses
        CacheSample("L10", 0, 0, 0, 0, 0, at=10),
        CacheSample("L10", 1, 3, 0, 0, 0, at=70),
        CacheSample("L2", 0, 100, 0, 0, 0, at=10),
        CacheSample("L2", 10, 110, 0, 0, 0, at=70),
    ]  # a minute apart: the figures keep each minute's last sample, as the dashboard does
    served_by_l1 = [attempt("t", "a", 1, 1, 2, cache="L1")]
    result = analyze(served_by_l1, since=0, until=180, capacities={}, cache_samples=samples)
    levels = [(lv.level, lv.hits, lv.misses, lv.source) for lv in result.levels]
    # L1 grows from the sample before the period; L2 and L10 from zero: their counters
    # started in the period, so their first samples count in full
    assert levels == [
        ("L1", 100 + 30 + 5, 50 + 10 + 5, "samples"),
        ("L2", 10, 110, "samples"),
        ("L10", 1, 3, "samples"),
    ]
    assert result.levels[0].hit_rate == pytest.approx(135 / 200)


def test_samples_without_lookups_in_the_period_fall_back_to_attempts() -> None:
    samples = [  # the same counters before the period and in it: no lookups in the period
        CacheSample("L1", 9, 9, 0, 0, 1, at=-10),
        CacheSample("L1", 9, 9, 0, 0, 1, at=10),
    ]
    result = analyze(
        [attempt("t", "a", 1, 1, 2, cache="L1")],
        since=0,
        until=60,
        capacities={},
        cache_samples=samples,
    )
    assert [(lv.level, lv.hits, lv.source) for lv in result.levels] == [("L1", 1, "attempts")]


def test_critical_path_follows_dependencies_within_the_period() -> None:
    attempts = [
        attempt("a", "x", 0, 0, 2),
        attempt("b", "y", 2, 2, 7),
        attempt("c", "x", 2, 2, 3),
        attempt("d", "y", 7, 7, 8),
    ]
    dependencies = {"b": ["a", "gone"], "c": ["a"], "d": ["b", "c"]}
    result = analyze(attempts, since=0, until=60, capacities={}, dependencies=dependencies)
    assert result.critical_path == ("a", "b", "d")
    assert result.critical_path_s == pytest.approx(8.0)


def test_a_dependency_loop_follows_the_order_tasks_ran_in() -> None:
    attempts = [attempt("a", "x", 0, 0, 1), attempt("b", "x", 1, 1, 3)]
    result = analyze(
        attempts, since=0, until=60, capacities={}, dependencies={"a": ["b"], "b": ["a"]}
    )
    assert (result.critical_path, result.critical_path_s) == (("a", "b"), 3.0)


def test_tasks_without_dependencies_in_the_period_have_no_chain() -> None:
    attempts = [attempt("a", "x", 0, 0, 1), attempt("b", "x", 1, 1, 4)]
    result = analyze(attempts, since=0, until=60, capacities={}, dependencies={"b": ["old"]})
    assert (result.critical_path, result.critical_path_s) == (("b",), 3.0)
    assert "critical_path" not in kinds(result)  # one task is no chain to dominate


def test_a_task_run_again_later_counts_once_on_the_critical_path() -> None:
    """One-second tasks, no dependencies; one runs again 8 s later: the path is one run of
    one task, never the idle time between its runs."""
    runs = [attempt(f"t{n}", "x", n * 0.1, n * 0.1, n * 0.1 + 1) for n in range(5)]
    runs.append(Attempt("t0", "x", "template", 2, "done", 9.0, 9.0, 10.0, None, "miss"))
    result = analyze(runs, since=0, until=60, capacities={}, dependencies={"t0": []})
    assert result.critical_path_s == pytest.approx(1.0)
    assert len(result.critical_path) == 1
    assert "split_task" not in {r.action for r in result.recommendations}


def test_a_dependency_run_after_its_dependent_is_another_run() -> None:
    runs = [attempt("a", "x", 0, 0, 2), attempt("b", "x", 2, 2, 3)]
    runs.append(Attempt("a", "x", "template", 2, "done", 20, 20, 25, None, "miss"))  # re-run
    result = analyze(runs, since=0, until=60, capacities={}, dependencies={"b": ["a"]})
    assert (result.critical_path, result.critical_path_s) == (("a",), 5.0)


def test_the_period_must_not_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        analyze([], since=10, until=5, capacities={})


# Each bottleneck kind, alone, on data built to show just it.


def slow_agent() -> Analysis:
    runs = [attempt(f"t{n}", "slow", 0, 0, float(n)) for n in range(1, 21)]  # 1 .. 20 s
    return analyze(runs, since=0, until=3600, capacities={"slow": 20})


def small_cache() -> Analysis:
    """L1 missed 30 of 40 lookups, 8 of them on results it had dropped for room."""
    samples = [
        CacheSample("L1", 0, 0, 0, 0, 0, at=-5),
        CacheSample("L1", 10, 30, 12, 0, 50, at=50, ghost_hits=8),
        CacheSample("L2", 0, 0, 0, 0, 0, at=-5),
        CacheSample("L2", 5, 25, 0, 0, 9, at=50),  # misses, but none more room would hit
    ]
    runs = [attempt(f"t{n}", "a", n, n, n + 0.1) for n in range(10)]
    return analyze(runs, since=0, until=600, capacities={"a": 1}, cache_samples=samples)


def saturated_agent() -> Analysis:
    """Capacity 1, eight one-second tasks queued at once."""
    runs = [attempt(f"t{n}", "busy", 0, n, n + 1) for n in range(8)]
    return analyze(runs, since=0, until=100, capacities={"busy": 1})


def queue_wait() -> Analysis:
    """Waits, while the agents had room: the pool held them."""
    runs = [attempt(f"t{n}", "a", 4 * n, 4 * n + 3, 4 * n + 4) for n in range(10)]
    runs += [attempt(f"u{n}", "b", 4 * n, 4 * n + 0.5, 4 * n + 1.5) for n in range(10)]
    return analyze(runs, since=0, until=3600, capacities={"a": 2, "b": 2})


def agent_out() -> Analysis:
    """x was out from 10 s to 40 s; its tasks, queued at 12 s, waited for it."""
    runs = [attempt(f"t{n}", "x", 12, 40 + n, 41 + n) for n in range(3)]
    changes = [
        AgentChange("x", "out", 10.0, "health score fell below 0.7"),
        AgentChange("x", "probing", 39.0),
        AgentChange("x", "in_service", 40.0, "probe succeeded"),
    ]
    return analyze(runs, since=0, until=100, capacities={"x": 3}, agent_changes=changes)


def rising_errors() -> Analysis:
    first = [attempt(f"t{n}", "flaky", n, n, n + 1) for n in range(10)]
    second = [
        attempt(
            f"u{n}", "flaky", 50 + n, 50 + n, 51 + n, "failed" if n % 2 else "done", error="503"
        )
        for n in range(10)
    ]
    return analyze(first + second, since=0, until=100, capacities={"flaky": 10})


def critical_path() -> Analysis:
    runs = [
        attempt("plan", "arch", 0, 0, 2),
        attempt("design", "arch", 2, 2, 5),
        attempt("build", "dev", 5, 5, 5.5),
    ]
    deps = {"design": ["plan"], "build": ["design"]}
    return analyze(runs, since=0, until=600, capacities={"arch": 1, "dev": 1}, dependencies=deps)


SCENARIOS: dict[str, Callable[[], Analysis]] = {
    "slow_agent": slow_agent,
    "small_cache": small_cache,
    "saturated_agent": saturated_agent,
    "queue_wait": queue_wait,
    "agent_out": agent_out,
    "rising_errors": rising_errors,
    "critical_path": critical_path,
}


@pytest.mark.parametrize("kind", SCENARIOS)
def test_each_bottleneck_kind_is_found_alone(kind: str) -> None:
    result = SCENARIOS[kind]()
    assert kinds(result) == {kind}
    (finding,) = result.findings
    assert finding.kind == kind and finding.advice


def test_slow_agent_is_judged_by_its_run_time() -> None:
    result = slow_agent()
    (found,) = result.bottlenecks
    assert found.subject == "slow"
    assert found.evidence["p95_run_s"] == 19.0  # nearest rank of 1..20 s
    assert found.evidence["slowest_task"] == "t20"
    assert [(r.action, r.subject) for r in result.recommendations] == [("split_task", "t20")]


def test_an_agent_whose_latency_is_mostly_wait_is_not_slow() -> None:
    runs = [attempt(f"t{n}", "quick", 0, 8, 8.05) for n in range(5)]  # 8 s queued, 50 ms run
    result = analyze(runs, since=0, until=20, capacities={"quick": 5})
    assert "slow_agent" not in kinds(result)
    assert kinds(result) == {"queue_wait"}  # it had room: the pool held them
    assert [r.action for r in result.recommendations] == ["raise_workers"]


def test_small_cache_evidence_and_the_estimated_gain() -> None:
    result = small_cache()
    (found,) = result.bottlenecks
    assert (found.subject, found.evidence["ghost_hits"], found.evidence["lookups"]) == ("L1", 8, 40)
    assert found.evidence["gain"] == 0.2
    ((action, subject, reason),) = [(r.action, r.subject, r.reason) for r in result.recommendations]
    assert (action, subject) == ("enlarge_cache", "L1")
    assert "cache_l1_size" in reason and "20%" in reason


def test_a_workload_that_never_repeats_gets_no_cache_advice() -> None:
    samples = [CacheSample(level, 0, 500, 0, 0, 500, at=30) for level in ("L1", "L2", "L3")]
    runs = [attempt(f"t{n}", "a", n, n, n + 0.1) for n in range(30)]
    result = analyze(runs, since=0, until=600, capacities={"a": 1}, cache_samples=samples)
    assert [lv.hit_rate for lv in result.levels] == [0.0, 0.0, 0.0]
    assert result.findings == ()


def test_a_level_with_few_lookups_is_not_judged() -> None:
    samples = [CacheSample("L1", 1, 18, 0, 0, 5, at=30, ghost_hits=9)]
    runs = [attempt(f"t{n}", "a", n, n, n + 0.1) for n in range(19)]
    result = analyze(runs, since=0, until=600, capacities={"a": 1}, cache_samples=samples)
    assert "small_cache" not in kinds(result)


def test_saturated_agent_evidence_and_advice() -> None:
    result = saturated_agent()
    (found,) = result.bottlenecks
    assert found.subject == "busy"
    assert found.evidence["utilization"] == 1.0
    assert found.evidence["in_system"] == pytest.approx((1 + 2 + 3 + 4 + 5 + 6 + 7 + 8) / 8)
    advice = {(r.action, r.subject): r.reason for r in result.recommendations}
    assert set(advice) == {("raise_capacity", "busy")}
    assert "from 1 to 5" in advice["raise_capacity", "busy"]


def test_an_agent_busy_whenever_it_had_work_but_never_waited_needs_nothing() -> None:
    runs = [attempt(f"t{n}", "steady", 2 * n, 2 * n, 2 * n + 1) for n in range(20)]
    result = analyze(runs, since=0, until=600, capacities={"steady": 1})
    assert result.agents[0].utilization == pytest.approx(1.0)
    assert result.findings == ()


def test_queue_wait_evidence_and_advice() -> None:
    result = queue_wait()
    (found,) = result.bottlenecks
    assert found.subject == "queue"
    assert found.evidence["wait_share"] == pytest.approx(35 / 55, abs=1e-3)
    assert found.evidence["for_a_worker_s"] == 35.0
    assert [(r.action, r.subject) for r in result.recommendations] == [("raise_workers", "pool")]


def test_a_wait_for_an_agent_that_was_out_says_so() -> None:
    result = agent_out()
    (found,) = result.bottlenecks
    assert found.subject == "x"
    assert found.evidence["waited_s"] == pytest.approx(3 * 28)
    assert found.evidence["reason"] == "health score fell below 0.7"
    assert "out of service" in found.message
    assert [(r.action, r.subject) for r in result.recommendations] == [("check_agent", "x")]


def test_the_same_finding_for_many_agents_is_one() -> None:
    runs = []
    for agent in ("a", "b", "c"):
        runs += [attempt(f"{agent}{n}", agent, 0, n, n + 1) for n in range(8)]
    result = analyze(runs, since=0, until=100, capacities=dict.fromkeys("abc", 1))
    assert [b.kind for b in result.bottlenecks] == ["saturated_agent"] * 3
    (finding,) = result.findings
    assert finding.subjects == ("a", "b", "c")
    assert len(finding.messages) == 3 and len(finding.advice) == 3


def test_rising_errors_evidence_and_advice() -> None:
    result = rising_errors()
    (found,) = result.bottlenecks
    assert found.subject == "flaky"
    assert found.evidence["first_half_error_rate"] == 0.0
    assert found.evidence["second_half_error_rate"] == 0.5
    assert (found.evidence["first_half_attempts"], found.evidence["second_half_attempts"]) == (
        10,
        10,
    )
    assert found.evidence["last_error"] == "503"
    assert [(r.action, r.subject) for r in result.recommendations] == [("change_strategy", "flaky")]


def test_steady_errors_are_not_a_rising_trend() -> None:
    runs = [
        attempt(f"t{n}", "a", n * 5, n * 5, n * 5 + 1, "failed" if n % 2 else "done")
        for n in range(20)
    ]
    assert "rising_errors" not in kinds(analyze(runs, since=0, until=100, capacities={"a": 5}))


def test_critical_path_evidence_and_advice() -> None:
    result = critical_path()
    (found,) = result.bottlenecks
    assert found.subject == "arch"
    assert found.evidence["path"] == ("plan", "design", "build")
    assert found.evidence["share"] == pytest.approx(5 / 5.5, abs=1e-3)
    assert found.evidence["longest_task"] == "design"
    assert [(r.action, r.subject) for r in result.recommendations] == [("split_task", "design")]


def test_healthy_data_shows_no_bottleneck() -> None:
    runs = []
    for n in range(40):  # two agents alternating, 90% L1 hits, barely any wait
        agent = "a" if n % 2 else "b"
        runs.append(attempt(f"t{n}", agent, n * 2.5, n * 2.5 + 0.1, n * 2.5 + 1.3, cache="L1"))
    runs += [attempt(f"m{n}", "a", 100 + n, 100 + n, 100.5 + n) for n in range(4)]
    deps = {f"t{n}": [f"t{n - 1}"] for n in range(1, 40)}  # a chain shared by both agents
    result = analyze(runs, since=0, until=110, capacities={"a": 1, "b": 1}, dependencies=deps)
    assert result.bottlenecks == ()
    assert result.recommendations == ()
    assert result.findings == ()
    assert result.levels[0].hit_rate == pytest.approx(40 / 44)
    assert all(a.utilization is not None and a.utilization > 0.9 for a in result.agents)
    assert len(result.critical_path) == 40


def test_thresholds_are_settable() -> None:
    strict = Thresholds(slow_p95_s=0.5)
    runs = [attempt("t", "a", 0, 0, 1)]
    assert kinds(analyze(runs, since=0, until=600, capacities={"a": 1})) == set()
    found = analyze(runs, since=0, until=600, capacities={"a": 1}, thresholds=strict)
    assert kinds(found) == {"slow_agent"}


def test_analysis_is_plain_json() -> None:
    result = critical_path()
    data = json.loads(json.dumps(result.as_dict()))
    assert data["bottlenecks"][0]["evidence"]["path"] == ["plan", "design", "build"]
    assert data["findings"][0]["kind"] == "critical_path"
    assert len(data["tasks"]) == 3
