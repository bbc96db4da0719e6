"""The dependency DAG: readiness, blocked propagation, ranks, critical path, batches."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault_bmad.engine.graph import TaskGraph
from vault_bmad.errors import DependencyCycle

DIAMOND = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}


def test_a_task_is_ready_when_every_dependency_is_done() -> None:
    graph = TaskGraph(DIAMOND)
    assert graph.ready() == ("a",)
    assert graph.state("d") == "waiting"
    assert set(graph.mark_done("a")) == {"b", "c"}
    assert graph.mark_done("b") == ()
    assert graph.state("d") == "waiting"
    assert graph.mark_done("c") == ("d",)
    assert graph.mark_done("d") == ()
    assert graph.pending() == ()


def test_nodes_come_in_topological_order() -> None:
    graph = TaskGraph({"d": ["b", "c"], "c": ["a"], "b": ["a"], "a": []})
    position = {t: i for i, t in enumerate(graph.nodes)}
    for task_id in graph.nodes:
        assert all(position[dep] < position[task_id] for dep in graph.dependencies(task_id))
    assert set(graph.dependents("a")) == {"b", "c"} and graph.dependents("d") == ()


def test_a_failure_blocks_everything_downstream_naming_the_failed_task() -> None:
    graph = TaskGraph({"a": [], "b": ["a"], "c": ["b"], "e": []})
    graph.mark_done("e")
    blocked = {record.task_id: record for record in graph.mark_failed("a")}
    assert set(blocked) == {"b", "c"}
    assert blocked["b"].failed_task == "a" and blocked["b"].via is None
    assert "'a' failed" in blocked["b"].reason
    assert blocked["c"].failed_task == "a" and blocked["c"].via == "b"
    assert "'b'" in blocked["c"].reason and "'a' failed" in blocked["c"].reason
    assert graph.state("c") == "blocked" and graph.blocked("c") == blocked["c"]
    assert graph.state("e") == "done" and graph.blocked("e") is None
    with pytest.raises(ValueError):
        graph.mark_done("c")


def test_a_failure_in_a_diamond_blocks_the_join_once() -> None:
    graph = TaskGraph(DIAMOND)
    graph.mark_done("a")
    blocked = graph.mark_failed("b")
    assert [record.task_id for record in blocked] == ["d"]
    assert graph.mark_done("c") == ()  # d stays blocked
    assert graph.state("d") == "blocked"


def test_unknown_dependency_blocks_unless_named_done() -> None:
    graph = TaskGraph({"x": ["ghost"], "y": ["earlier"]}, done=["earlier"])
    assert graph.state("y") == "ready"
    record = graph.blocked("x")
    assert record is not None and record.failed_task == "ghost"
    assert "not a known task" in record.reason


def test_batches_join_the_graph_and_inherit_failures() -> None:
    graph = TaskGraph({"a": [], "b": []})
    graph.mark_done("a")
    graph.mark_failed("b")
    change = graph.add({"c": ["a"], "d": ["b"], "e": ["d"]})
    assert change.ready == ("c",)
    assert {r.task_id: r.failed_task for r in change.blocked} == {"d": "b", "e": "b"}
    with pytest.raises(ValueError, match="already in the graph"):
        graph.add({"a": []})


def test_a_cycle_is_refused_and_leaves_the_graph_unchanged() -> None:
    graph = TaskGraph({"a": []})
    with pytest.raises(DependencyCycle) as caught:
        graph.add({"x": ["y"], "y": ["z"], "z": ["x"], "w": ["a"]})
    assert set(caught.value.cycle) == {"x", "y", "z"}
    assert caught.value.cycle[0] == caught.value.cycle[-1]
    assert graph.nodes == ("a",)


def test_upward_rank_and_critical_path_by_hand() -> None:
    # a(2) -> b(5) -> d(1); a -> c(3) -> d; e(4) alone.
    graph = TaskGraph({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": []})
    durations = {"a": 2.0, "b": 5.0, "c": 3.0, "d": 1.0, "e": 4.0}
    ranks = graph.upward_ranks(durations.__getitem__)
    assert ranks == {"d": 1.0, "b": 6.0, "c": 4.0, "a": 8.0, "e": 4.0}
    path = graph.critical_path(durations.__getitem__)
    assert path.tasks == ("a", "b", "d") and path.length == 8.0
    graph.mark_done("a")
    assert "a" not in graph.upward_ranks(durations.__getitem__)
    assert graph.critical_path(durations.__getitem__).tasks == ("b", "d")


@st.composite
def dags(draw: st.DrawFn) -> tuple[dict[str, list[str]], dict[str, float]]:
    n = draw(st.integers(1, 9))
    deps = {
        f"t{i}": [f"t{j}" for j in range(i) if draw(st.booleans()) and draw(st.booleans())]
        for i in range(n)
    }
    durations = {t: float(draw(st.integers(1, 9))) for t in deps}
    return deps, durations


@settings(max_examples=100, deadline=None)
@given(dags())
def test_critical_path_is_the_longest_chain(
    case: tuple[dict[str, list[str]], dict[str, float]],
) -> None:
    deps, durations = case
    graph = TaskGraph(deps)
    children = {t: [c for c in deps if t in deps[c]] for t in deps}

    def longest_from(task: str) -> float:  # brute force over every chain
        return durations[task] + max((longest_from(c) for c in children[task]), default=0.0)

    path = graph.critical_path(durations.__getitem__)
    assert path.length == max(longest_from(t) for t in deps)
    assert path.length == sum(durations[t] for t in path.tasks)
    for earlier, later in itertools.pairwise(path.tasks):
        assert earlier in deps[later]


def test_reopening_a_failed_task_releases_what_it_blocked() -> None:
    graph = TaskGraph({"a": [], "x": [], "b": ["a"], "c": ["b"], "d": ["a", "x"], "e": []})
    graph.mark_done("e")
    graph.mark_failed("x")
    graph.mark_failed("a")
    assert {t: graph.state(t) for t in "bcd"} == dict.fromkeys("bcd", "blocked")
    change = graph.reopen("a", [])
    assert change.ready == ("a",)
    assert change.released == ("b", "c")  # upstream first; both wait for a again
    assert graph.state("b") == graph.state("c") == "waiting"
    assert graph.blocked("b") is None
    assert graph.state("d") == "blocked"  # x failed too: still blocked, now by x
    assert graph.blocked("d") is not None and graph.blocked("d").failed_task == "x"  # type: ignore[union-attr]
    assert graph.mark_done("a") == ("b",)
    assert graph.mark_done("b") == ("c",)


def test_reopened_skipped_a_task_ends_at_once_and_frees_what_waits_for_it() -> None:
    # A step its run now leaves out: done before, or failed (blocking what came after).
    graph = TaskGraph({"a": [], "b": ["a"], "c": ["b"], "s": [], "d": ["c", "s"]}, skipped=["s"])
    graph.mark_done("a")
    graph.mark_failed("b")
    assert graph.state("c") == graph.state("d") == "blocked"
    change = graph.reopen("b", ["a"], skipped=True)
    assert (graph.state("b"), change.released, change.ready) == ("skipped", ("c", "d"), ("c",))
    assert graph.mark_done("c") == ("d",)  # s, skipped, does not hold d up
    assert graph.reopen("a", [], skipped=True).ready == ()  # b had ended already
    assert graph.state("a") == "skipped"


def test_reopening_a_done_task_releases_nothing() -> None:
    graph = TaskGraph({"a": [], "b": ["a"]})
    graph.mark_done("a")
    assert graph.reopen("a", []).released == ()


def test_a_skipped_task_ends_at_once_and_counts_as_ended() -> None:
    graph = TaskGraph(DIAMOND, skipped=["b"])
    assert graph.state("b") == "skipped"
    assert graph.ready() == ("a",)
    assert graph.mark_done("a") == ("c",)
    assert graph.mark_done("c") == ("d",)  # b, skipped, does not hold d up
    assert graph.reopen("b", ["a"]).ready == ("b",)  # run after all: d waits for it again
    assert graph.state("d") == "waiting"


@settings(max_examples=100, deadline=None)
@given(dags(), st.lists(st.tuples(st.sampled_from(("done", "fail", "reopen")), st.integers(0, 8))))
def test_has_pending_agrees_with_the_pending_tasks_whatever_happens(
    case: tuple[dict[str, list[str]], dict[str, float]], moves: list[tuple[str, int]]
) -> None:
    deps, _ = case
    graph = TaskGraph(deps, done=["t0"] if len(deps) > 3 else ())
    ids = list(deps)
    assert graph.has_pending() == bool(graph.pending())
    for move, number in moves:  # done/fail what may end; reopen what has ended
        task_id = ids[number % len(ids)]
        state = graph.state(task_id)
        if move == "reopen" and state in ("done", "failed", "blocked"):
            graph.reopen(task_id, deps[task_id])
        elif move == "done" and state == "ready":
            graph.mark_done(task_id)
        elif move == "fail" and state in ("ready", "waiting"):
            graph.mark_failed(task_id)
        assert graph.has_pending() == bool(graph.pending())
