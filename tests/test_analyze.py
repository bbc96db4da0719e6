"""The analyzer on hand-built attempts whose figures and bottlenecks are known."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from vault_bmad.metrics.analyze import Analysis, Thresholds, analyze, percentile
from vault_bmad.metrics.records import Attempt, CacheSample


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
    assert (o.attempts, o.tasks, o.done, o.failed) == (3, 3, 2, 1)
    assert o.error_rate == pytest.approx(1 / 3)
    assert o.throughput_per_min == pytest.approx(2 / 10)
    assert (o.latency_p50_s, o.latency_p95_s, o.latency_p99_s) == (3.0, 4.0, 4.0)
    assert o.latency_mean_s == pytest.approx(10 / 3)
    assert o.wait_share == pytest.approx(3 / 10)
    assert o.mean_wait_s == pytest.approx(1.0)
    assert o.hit_rate == 0.0
    assert o.utilization == pytest.approx((2 + 4 + 1) / (4 * 600))
    agents = {a.agent: a for a in result.agents}
    assert list(agents) == ["a", "b", "idle"]
    assert agents["a"].busy_s == pytest.approx(6.0)
    assert agents["a"].utilization == pytest.approx(6 / (2 * 600))
    assert (agents["b"].failed, agents["b"].error_rate) == (1, 1.0)
    assert agents["b"].wait_share == pytest.approx(2 / 3)
    assert (agents["idle"].attempts, agents["idle"].utilization) == (0, 0.0)
    assert agents["idle"].latency_p95_s is None
    assert [t.task_id for t in result.tasks] == ["t1", "t2", "t3"]


def test_a_retried_task_is_one_row_ending_with_its_last_attempt() -> None:
    first = attempt("t", "a", queued=0, started=1, ended=3, status="failed")
    second = Attempt("t", "b", "template", 2, "done", 0, 5, 6, None, "miss")
    result = analyze([second, first], since=0, until=60, capacities={})
    (task,) = result.tasks
    assert (task.agent, task.status, task.attempts) == ("b", "done", 2)
    assert (task.started, task.ended, task.run_s, task.span_s) == (1, 6, 3.0, 5.0)
    assert (result.overall.attempts, result.overall.tasks) == (2, 1)


def test_busy_time_is_clipped_to_the_period() -> None:
    result = analyze(
        [attempt("t", "a", queued=-10, started=-5, ended=5)], since=0, until=10, capacities={}
    )
    assert result.agents[0].busy_s == pytest.approx(5.0)
    assert result.agents[0].capacity == 1  # an agent missing from capacities counts as 1
    assert result.overall.utilization == pytest.approx(0.5)


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
        CacheSample("L1", 130, 60, 0, 0, 10, at=20),
        CacheSample("L1", 5, 5, 0, 0, 10, at=30),  # the counters restarted: +5 hits, +5 misses
        CacheSample("L10", 0, 0, 0, 0, 0, at=10),
        CacheSample("L10", 1, 3, 0, 0, 0, at=20),
        CacheSample("L2", 0, 100, 0, 0, 0, at=10),
        CacheSample("L2", 10, 110, 0, 0, 0, at=20),
    ]
    served_by_l1 = [attempt("t", "a", 1, 1, 2, cache="L1")]
    result = analyze(served_by_l1, since=0, until=60, capacities={}, cache_samples=samples)
    levels = [(lv.level, lv.hits, lv.misses, lv.source) for lv in result.levels]
    assert levels == [
        ("L1", 35, 15, "samples"),
        ("L2", 10, 10, "samples"),
        ("L10", 1, 3, "samples"),
    ]
    assert result.levels[0].hit_rate == pytest.approx(0.7)


def test_samples_without_lookups_in_the_period_fall_back_to_attempts() -> None:
    samples = [CacheSample("L1", 9, 9, 0, 0, 1, at=10)]  # a single sample: no increase
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


def test_the_period_must_not_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        analyze([], since=10, until=5, capacities={})


# Each bottleneck kind, alone, on data built to show just it.


def slow_agent() -> Analysis:
    runs = [attempt(f"t{n}", "slow", 0, 0, float(n)) for n in range(1, 21)]  # 1 .. 20 s
    return analyze(runs, since=0, until=3600, capacities={"slow": 10})


def low_hit_rate() -> Analysis:
    served = ["L1"] * 10 + ["miss"] * 10
    runs = [attempt(f"t{n}", "a", n, n, n + 0.1, cache=c) for n, c in enumerate(served)]
    return analyze(runs, since=0, until=600, capacities={"a": 1})


def saturated_agent() -> Analysis:
    runs = back_to_back("busy", 19, 5.0) + back_to_back("lazy", 1, 5.0)
    return analyze(runs, since=0, until=100, capacities={"busy": 1, "lazy": 1})


def queue_wait() -> Analysis:
    runs = [attempt(f"t{n}", "a", 4 * n, 4 * n + 3, 4 * n + 4) for n in range(10)]
    runs += [attempt(f"u{n}", "b", 4 * n, 4 * n + 0.5, 4 * n + 1.5) for n in range(10)]
    return analyze(runs, since=0, until=3600, capacities={"a": 2, "b": 2})


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
    "low_hit_rate": low_hit_rate,
    "saturated_agent": saturated_agent,
    "queue_wait": queue_wait,
    "rising_errors": rising_errors,
    "critical_path": critical_path,
}


@pytest.mark.parametrize("kind", SCENARIOS)
def test_each_bottleneck_kind_is_found_alone(kind: str) -> None:
    assert kinds(SCENARIOS[kind]()) == {kind}


def test_slow_agent_evidence_and_split_advice() -> None:
    result = slow_agent()
    (found,) = result.bottlenecks
    assert found.subject == "slow"
    assert found.evidence["p95_s"] == 19.0  # nearest rank of 1..20 s
    assert found.evidence["slowest_task"] == "t20"
    assert found.evidence["wait_share"] == 0.0
    assert [(r.action, r.subject) for r in result.recommendations] == [("split_task", "t20")]


def test_a_slow_agent_that_mostly_waits_gets_more_capacity() -> None:
    runs = [attempt(f"t{n}", "slow", 0, 8, 9) for n in range(5)]
    result = analyze(runs, since=0, until=20, capacities={"slow": 1})
    assert "slow_agent" in kinds(result)
    assert ("raise_capacity", "slow") in [(r.action, r.subject) for r in result.recommendations]


def test_low_hit_rate_evidence_and_advice() -> None:
    result = low_hit_rate()
    (found,) = result.bottlenecks
    assert (found.subject, found.evidence["hit_rate"], found.evidence["hits"]) == ("L1", 0.5, 10)
    assert [(r.action, r.subject) for r in result.recommendations] == [("enlarge_cache", "L1")]


def test_a_level_with_few_lookups_is_not_judged() -> None:
    runs = [
        attempt(f"t{n}", "a", n, n, n + 0.1, cache="L1" if n < 5 else "miss") for n in range(19)
    ]
    result = analyze(runs, since=0, until=600, capacities={"a": 1})
    assert result.levels[0].hit_rate == pytest.approx(5 / 19)
    assert "low_hit_rate" not in kinds(result)


def test_saturated_agent_evidence_and_advice() -> None:
    result = saturated_agent()
    (found,) = result.bottlenecks
    assert found.subject == "busy"
    assert found.evidence["utilization"] == 0.95
    assert found.evidence["idle_agents"] == ("lazy",)
    advice = {(r.action, r.subject): r.reason for r in result.recommendations}
    assert set(advice) == {("raise_capacity", "busy"), ("change_strategy", "busy")}
    assert "from 1 to 2" in advice["raise_capacity", "busy"]


def test_queue_wait_evidence_and_advice() -> None:
    result = queue_wait()
    (found,) = result.bottlenecks
    assert found.subject == "queue"
    assert found.evidence["wait_share"] == pytest.approx(35 / 55, abs=1e-3)
    assert found.evidence["most_waiting_agent"] == "a"
    assert found.evidence["agent_wait_s"] == 30.0
    assert [(r.action, r.subject) for r in result.recommendations] == [("add_agent", "a")]


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
    for n in range(40):  # two agents alternating, each about half busy, 90% L1 hits
        agent = "a" if n % 2 else "b"
        runs.append(attempt(f"t{n}", agent, n * 2.5, n * 2.5 + 0.1, n * 2.5 + 1.3, cache="L1"))
    runs += [attempt(f"m{n}", "a", 100 + n, 100 + n, 100.5 + n) for n in range(4)]
    deps = {f"t{n}": [f"t{n - 1}"] for n in range(1, 40)}  # a chain shared by both agents
    result = analyze(runs, since=0, until=110, capacities={"a": 1, "b": 1}, dependencies=deps)
    assert result.bottlenecks == ()
    assert result.recommendations == ()
    assert result.levels[0].hit_rate == pytest.approx(40 / 44)
    assert all(0.2 < a.utilization < 0.9 for a in result.agents)
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
    assert data["overall"]["tasks"] == 3
