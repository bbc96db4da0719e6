"""The dashboard's pure views: timeline lanes, workflow graph layout and Plotly figures."""

from __future__ import annotations

import itertools
import random
from typing import Any

import plotly.graph_objects as go

from tests.dashboard_history import history
from vault_bmad.engine.snapshot import TaskView
from vault_bmad.metrics.records import Attempt
from vault_bmad.metrics.series import TimeSeries
from vault_bmad.web import charts, run_charts
from vault_bmad.web.dag import layered, run_graph, workflow_runs
from vault_bmad.web.timeline import RunningTask, build_timeline

NOW = 1_800_000_000.0
HOSTILE = "<img src=x onerror=alert(1)>"


def attempt(task: str, agent: str, start: float, end: float, **extra: Any) -> Attempt:
    fields: dict[str, Any] = {"runtime": "template", "attempt": 1, "status": "done"}
    fields |= extra
    return Attempt(task, agent, queued_at=start - 1, started_at=start, ended_at=end, **fields)


def view(task_id: str, status: str = "done", **extra: Any) -> TaskView:
    fields: dict[str, Any] = {
        "path": "Tasks/Run.md",
        "title": task_id,
        "priority": "normal",
        "agent": "a",
        "attempts": 1,
        "error": None,
        "output": None,
        "workflow": None,
        "step": None,
        "depends_on": (),
    }
    fields |= extra
    return TaskView(id=task_id, status=status, **fields)


def test_lanes_never_overlap_and_are_reused() -> None:
    rng = random.Random(4)
    attempts = []
    for number in range(300):
        start = NOW - rng.uniform(0, 600)
        attempts.append(attempt(f"t{number}", rng.choice("ab"), start, start + rng.uniform(1, 40)))
    running = [RunningTask("live", "a", 1, NOW - 5)]
    drawn = build_timeline(attempts, running, {}, now=NOW)
    assert drawn.shown == 301 and len(drawn.bars) == 301
    by_lane: dict[str, list[tuple[float, float]]] = {}
    for bar in drawn.bars:
        assert bar.lane.split(" · ")[0] == bar.agent
        by_lane.setdefault(bar.lane, []).append((bar.started_at, bar.ended_at))
    for spans in by_lane.values():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start
    assert drawn.lanes[0] == "a"  # lanes sort by agent, then number
    assert [b.status for b in drawn.bars if b.task_id == "live"] == ["running"]
    sequential = [attempt(f"s{n}", "c", NOW + 10 * n, NOW + 10 * n + 5) for n in range(5)]
    assert build_timeline(sequential, [], {}, now=NOW + 100).lanes == ("c",)


def test_retries_and_the_critical_path_are_marked() -> None:
    attempts = [
        attempt("brief", "a", NOW, NOW + 10, status="failed"),
        attempt("brief", "a", NOW + 11, NOW + 20, attempt=2),
        attempt("prd", "b", NOW + 21, NOW + 60),
        attempt("side", "b", NOW + 21, NOW + 22),
        attempt("run", "none", NOW + 60, NOW + 61, runtime="workflow"),
    ]
    drawn = build_timeline(
        attempts, [], {"prd": ["brief"], "side": ["brief"]}, now=NOW + 70, total=9
    )
    assert (drawn.shown, drawn.total) == (4, 9)  # the workflow's own attempt is not drawn
    assert drawn.critical_path == ("brief", "prd")
    assert [b.retried for b in drawn.bars if b.task_id == "brief"] == [True, False]
    assert {b.task_id for b in drawn.bars if b.critical} == {"brief", "prd"}
    alone = build_timeline(attempts[2:3], [], {"prd": []}, now=NOW + 70)
    assert alone.critical_path == ()  # one task is no chain
    long_alone = attempt("report", "c", NOW, NOW + 500)  # outlasts the chain: still no chain
    beside = build_timeline([long_alone, *attempts], [], {"prd": ["brief"]}, now=NOW + 600)
    assert beside.critical_path == ("brief", "prd")


def test_layers_put_every_dependency_first() -> None:
    rng = random.Random(2)
    nodes = [f"n{i}" for i in range(60)]
    graph = {node: rng.sample(nodes[:i], min(i, rng.randrange(4))) for i, node in enumerate(nodes)}
    placed = layered(graph)
    for node, deps in graph.items():
        for dep in deps:
            assert placed[dep][0] < placed[node][0]
    chain = {f"c{i}": [f"c{i - 1}"] if i else [] for i in range(5000)}
    assert layered(chain)["c4999"] == (4999, 0.0)  # no recursion limit on long chains
    looped = layered({"x": ["y"], "y": ["x"]})
    assert set(looped) == {"x", "y"}


def test_a_workflow_run_becomes_a_graph() -> None:
    tasks = [
        view("tasks/go", "running", workflow="greenfield", depends_on=("tasks/go/a", "tasks/go/b")),
        view("tasks/go/a", workflow="greenfield", step="a", depends_on=("tasks/prep",)),
        view("tasks/go/b", "running", workflow="greenfield", step="b", depends_on=("tasks/go/a",)),
        view("tasks/prep"),
    ]
    [run] = workflow_runs(tasks)
    assert (run.id, run.steps) == ("tasks/go", ("tasks/go/a", "tasks/go/b"))
    graph = run_graph(run, tasks)
    assert [n.id for n in graph.nodes] == ["tasks/prep", "tasks/go/a", "tasks/go/b"]
    assert [n.outside for n in graph.nodes] == [True, False, False]
    assert set(graph.edges) == {("tasks/prep", "tasks/go/a"), ("tasks/go/a", "tasks/go/b")}


def test_figures_are_valid_plotly_and_escape_note_text() -> None:
    attempts = history(NOW, 50, ("dev", HOSTILE))
    drawn = build_timeline(attempts, [], {}, now=NOW)
    series = TimeSeries((NOW - 120, NOW - 60), {"hit_rate": (0.5, None), "size": (3.0, 4.0)})
    figures = [
        run_charts.gantt_figure(drawn, {a.task_id: HOSTILE for a in attempts}),
        charts.latency_figure({-40: 2, 0: 5, 3: 1}, {"p50": 1.0, "p95": 1.2}),
        charts.rate_lines_figure({HOSTILE: series}, "hit_rate", "r", "hit rate"),
        charts.bars_figure({"L1": 3.0, "miss": 1.0}, "served", "attempts"),
        charts.pool_figure(series, 4, NOW - 3600, NOW),
        charts.utilization_heatmap([HOSTILE], [NOW - 60], [[0.5]]),
    ]
    for figure in figures:
        go.Figure(figure)  # raises on anything Plotly does not know
    text = repr(figures)
    assert HOSTILE not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text


def test_large_timelines_switch_to_webgl() -> None:
    small = build_timeline(history(NOW, 100, ("a",)), [], {}, now=NOW)
    large = build_timeline(history(NOW, 3000, ("a", "b")), [], {}, now=NOW)
    small_types = {trace["type"] for trace in run_charts.gantt_figure(small, {})["data"]}
    large_types = {trace["type"] for trace in run_charts.gantt_figure(large, {})["data"]}
    assert small_types == {"scatter"}
    assert large_types == {"scattergl"}
