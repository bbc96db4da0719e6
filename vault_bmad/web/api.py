"""The JSON API: what the pages draw from, and what scripts may read.

Live state comes from the engine's latest snapshot; history from the store, aggregated in
SQL (`metrics.queries`), so no answer grows with the number of recorded attempts. Charts
come ready to draw, as Plotly figures. The timeline, the largest answer, carries an ETag,
so a page polling it gets a 304 while nothing changed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, abort, request
from plotly.io.json import to_json_plotly

from vault_bmad.engine.snapshot import EngineSnapshot, TaskView
from vault_bmad.metrics import series, usage
from vault_bmad.metrics.figures import critical_path, task_figures
from vault_bmad.metrics.records import Attempt
from vault_bmad.model.definitions import Priority
from vault_bmad.model.status import PENDING
from vault_bmad.web import charts, run_charts
from vault_bmad.web.dag import Run, run_graph, workflow_runs
from vault_bmad.web.pages import RETRIED
from vault_bmad.web.state import Dashboard, dashboard
from vault_bmad.web.timeline import RunningTask, build_timeline
from vault_bmad.web.vault_files import obsidian_url

api = Blueprint("api", __name__, url_prefix="/api")

MAX_BARS = 10_000  # attempts drawn on the timeline: the latest of the range
MAX_TASKS = 5_000  # tasks in one answer of /api/tasks
TASK_HISTORY = 1_000  # attempts of one task
MAX_QUERY_WORDS = 20  # words searched for in /api/tasks?q=


def json_response(payload: object, status: int = 200) -> Response:
    """JSON through Plotly's encoder: NaN becomes null, and `<`, `>` are escaped. It carries
    an ETag, so a page polling an answer that did not change gets a 304."""
    response = Response(to_json_plotly(payload), status=status, mimetype="application/json")
    if status == 200:
        response.add_etag()
        response.make_conditional(request)
    return response


def _range_arg() -> str | None:
    return request.args.get("since") or request.args.get("range")


@api.get("/health")
def health() -> Response:
    """ "ok" (200) when every part works; else "degraded" (503), with each broken part
    ("store", "watcher", "engine", "pages") and why."""
    board = dashboard()
    backend = board.backend
    snapshot = backend.snapshot()
    broken = backend.broken()
    if (failed := board.failures.problem()) is not None:
        broken["pages"] = failed
    return json_response(
        {
            "status": "degraded" if broken else "ok",
            "broken": broken,
            "uptime_s": round(board.wall() - backend.started_at, 3),
            "tasks": snapshot.counts(),
            "queued": snapshot.queued,
            "running": snapshot.running,
            "pool_size": snapshot.pool_size,
            "problems": len(snapshot.problems),
            "agents_out": snapshot.agents_out(),
            "endpoints": [asdict(endpoint) for endpoint in snapshot.endpoints],
        },
        503 if broken else 200,
    )


@api.get("/metrics")
def metrics() -> Response:
    """The overview: tasks by status now, the range's totals, and its charts."""
    board = dashboard()
    period = board.time_range(_range_arg())
    snapshot = board.backend.snapshot()
    digest = board.digest(period)
    agents = series.agent_figures(digest, _capacities(snapshot))
    overall = series.overall(digest, agents)
    levels = series.level_series(digest)
    out = [agent.id for agent in snapshot.agents if agent.state != "in_service"]
    return json_response(
        {
            "range": asdict(period),
            "now": _now(snapshot),
            "totals": asdict(overall),
            "usage": usage.total(board.backend.store, period.since, period.until).as_dict(),
            "levels": [asdict(level) for level in series.cache_levels(digest)],
            "charts": {
                "throughput": charts.throughput_figure(series.attempt_series(digest)),
                "latency": charts.latency_figure(series.latency_counts(digest), overall.latency_s),
                "cache_levels": charts.rate_lines_figure(
                    levels, "hit_rate", "cache-levels", "hit rate"
                ),
                "utilization": charts.utilization_figure(agents, out),
                "pool": charts.pool_figure(
                    series.pool_series(digest), snapshot.pool_size, period.since, period.until
                ),
            },
        }
    )


def _capacities(snapshot: EngineSnapshot) -> dict[str, int]:
    return {agent.id: agent.capacity for agent in snapshot.agents}


def _now(snapshot: EngineSnapshot) -> dict[str, Any]:
    return {
        "at": snapshot.at,
        "tasks": snapshot.counts(),
        "queued": snapshot.queued,
        "running": snapshot.running,
        "pool_size": snapshot.pool_size,
        "problems": len(snapshot.problems),
        "agents_out": snapshot.agents_out(),
        "endpoints_down": [e.url for e in snapshot.endpoints if e.down_since is not None],
        "running_by_agent": {a.id: list(a.running) for a in snapshot.agents if a.running},
        "waiting": [_waiting(task) for task in snapshot.waiting()],
    }


def _waiting(task: TaskView) -> dict[str, Any]:
    """A task waiting for its user, as the overview lists it: its questions, and where to
    answer them."""
    vault = dashboard().backend.vault
    return {**asdict(task), "obsidian": obsidian_url(vault, task.path)}


@api.get("/analysis")
def analysis() -> Response:
    """The bottlenecks and recommendations of the latest analysis of the range."""
    board = dashboard()
    period = board.time_range(_range_arg())
    return json_response(board.analyses.latest(board.backend.snapshot(), period).as_dict())


@api.get("/tasks")
def tasks() -> Response:
    """Tasks now, filtered by `status`, `agent`, `workflow` and the words in `q` (which
    search ids, titles, paths, agents, workflows and error text), sorted by `sort`
    (a field of SORTS, "-" first for descending); without `sort`, those waiting for
    their user's answers come first."""
    snapshot = dashboard().backend.snapshot()
    status, agent = request.args.get("status"), request.args.get("agent")
    workflow = request.args.get("workflow")
    words = request.args.get("q", "").lower().split()
    if len(words) > MAX_QUERY_WORDS:
        abort(400, description=f"q may hold at most {MAX_QUERY_WORDS} words, not {len(words)}")
    found = [
        task
        for task in snapshot.tasks
        if (not status or task.status == status)
        and (not agent or task.agent == agent)
        and (not workflow or task.workflow == workflow)
        and all(word in _searchable(task) for word in words)
    ]
    order = request.args.get("sort") or "id"
    name = order.removeprefix("-")
    if name not in SORTS:
        abort(400, description=f"sort must be one of {', '.join(SORTS)}, not {order!r}")
    found.sort(key=lambda task: (_absent(SORTS[name](task), order != name), task.id))
    if order != name:
        found.reverse()
    if not request.args.get("sort"):
        found.sort(key=lambda task: task.asked_at is None)  # stable: by id within each
    offset = _int_arg("offset", 0, 0, len(found))
    limit = _int_arg("limit", MAX_TASKS, 1, MAX_TASKS)
    return json_response(
        {
            "tasks": [asdict(task) for task in found[offset : offset + limit]],
            "total": len(found),
            "offset": offset,
            "counts": snapshot.counts(),
        }
    )


def _searchable(task: TaskView) -> str:
    return (
        f"{task.id} {task.title} {task.path} {task.agent or ''} {task.workflow or ''} "
        f"{task.error or ''}"
    ).lower()


SortKey = str | int | float
SORTS: dict[str, Callable[[TaskView], SortKey | None]] = {
    "id": lambda t: t.id,
    "title": lambda t: t.title.casefold(),
    "status": lambda t: t.status,
    "agent": lambda t: t.agent,
    "priority": lambda t: Priority.parse(t.priority).value,
    "attempts": lambda t: t.attempts,
    "duration": lambda t: t.seconds,
}


def _absent(value: SortKey | None, descending: bool) -> tuple[bool, SortKey]:
    """Tasks without a value come last, whichever way the list is sorted."""
    return (value is None) != descending, value if value is not None else 0


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    text = request.args.get(name)
    if text is None:
        return default
    try:
        return min(high, max(low, int(text)))
    except ValueError:
        abort(400, description=f"{name} must be a whole number, not {text!r}")


@api.get("/tasks/<path:task_id>")
def task(task_id: str) -> Response:
    board = dashboard()
    view = board.backend.snapshot().task(task_id)
    if view is None:
        abort(404, description=f"no task {task_id!r}")
    store = board.backend.store
    stored = store.task(task_id)
    history = [attempt_dict(a) for a in store.attempts(task_id=task_id, limit=TASK_HISTORY)]
    vault = board.backend.vault
    spent = usage.usage(store, "task_id").get(task_id, usage.NONE)
    return json_response(
        {
            "task": asdict(view),
            "stored": asdict(stored) if stored else None,
            "attempts": history,
            "usage": spent.as_dict(),
            "obsidian": obsidian_url(vault, view.path),
            "output_obsidian": obsidian_url(vault, view.output) if view.output else None,
        }
    )


def attempt_dict(attempt: Attempt) -> dict[str, Any]:
    return {**asdict(attempt), "wait_ms": attempt.wait_ms, "duration_ms": attempt.duration_ms}


@api.post("/tasks/<path:task_id>/rerun")
def rerun(task_id: str) -> Response:
    """Set the task's note back to `status: todo`; 409 while it is queued or running."""
    backend = dashboard().backend
    view = backend.snapshot().task(task_id)
    if view is None:
        abort(404, description=f"no task {task_id!r}")
    if not backend.rerun(task_id):
        abort(
            409,
            description=f"{task_id} is queued or running, or its note cannot be written now; "
            "it can run again once it ends",
        )
    return json_response({"rerun": task_id})


@api.post("/retry")
def retry() -> Response:
    """Rerun every task that ended in the statuses asked (`?status=failed&status=blocked`;
    both when none is named); the tasks their failures blocked wait for them again."""
    wanted = request.args.getlist("status") or list(RETRIED)
    if unknown := set(wanted) - set(RETRIED):
        abort(400, description=f"status must be one of {', '.join(RETRIED)}, not {sorted(unknown)}")
    return json_response({"retried": dashboard().backend.retry(wanted)})


@api.get("/agents")
def agents() -> Response:
    """Each agent now (health, latency, load) with its figures over the range."""
    board = dashboard()
    period = board.time_range(_range_arg())
    snapshot = board.backend.snapshot()
    digest = board.digest(period)
    capacities = _capacities(snapshot)
    figures = {figure.agent: figure for figure in series.agent_figures(digest, capacities)}
    spent = usage.usage(board.backend.store, "agent", period.since, period.until)
    found = [
        {
            **asdict(agent),
            "period": asdict(figures[agent.id]) if agent.id in figures else None,
            "usage": spent.get(agent.id, usage.NONE).as_dict(),
        }
        for agent in snapshot.agents
    ]
    names, times, grid = series.utilization_grid(digest, capacities)
    return json_response(
        {
            "range": asdict(period),
            "agents": found,
            "charts": {
                "load": charts.load_figure(found),
                "utilization": charts.utilization_heatmap(names, times, grid),
            },
        }
    )


@api.get("/cache")
def cache() -> Response:
    """The cache levels over the range, their counters now, and the prefetch precision."""
    board = dashboard()
    period = board.time_range(_range_arg())
    digest = board.digest(period)
    levels = series.level_series(digest)
    served = series.served_by_level(digest)
    live = board.backend.cache_stats()
    prefetch = live.prefetch if live else None
    return json_response(
        {
            "range": asdict(period),
            "levels": [asdict(level) for level in series.cache_levels(digest)],
            "served": served,
            "live": live.as_dict() if live else None,
            "prefetch_precision": prefetch.precision if prefetch and prefetch.issued else None,
            "charts": {
                "hit_rate": charts.rate_lines_figure(levels, "hit_rate", "cache-rate", "hit rate"),
                "size": charts.rate_lines_figure(levels, "size", "cache-size", "entries"),
                "evictions": charts.rate_lines_figure(
                    levels, "evictions", "cache-evictions", "evictions per bucket"
                ),
                "served": charts.bars_figure(
                    {key: float(value) for key, value in served.items()}, "served", "attempts"
                ),
            },
        }
    )


@api.get("/problems")
def problems() -> Response:
    return json_response(
        {"problems": [p.as_dict() for p in dashboard().backend.snapshot().problems]}
    )


@api.get("/reports")
def reports() -> Response:
    board = dashboard()
    vault = board.backend.vault
    return json_response(
        {
            "reports": [
                {**asdict(entry), "obsidian": obsidian_url(vault, entry.path)}
                for entry in board.reports.reports()
            ]
        }
    )


@api.get("/timeline")
def timeline() -> Response:
    """The Gantt of the range's attempts (the latest MAX_BARS), or of one workflow run."""
    board = dashboard()
    period = board.time_range(_range_arg())
    snapshot = board.backend.snapshot()
    run = _run(snapshot, request.args.get("run"))
    running = [t for t in snapshot.tasks if t.status == "running"]
    if run is not None:
        members = {run.id, *run.steps}
        running = [t for t in running if t.id in members]
    version = _version(board, f"{period.since} {run.id if run else ''}", running)
    if request.if_none_match.contains(version):
        return Response(status=304, headers={"ETag": f'"{version}"'})
    if run is None:
        attempts = board.backend.store.attempts(
            since=period.since, until=period.until + 1e-6, limit=MAX_BARS
        )
        total = series.overall(board.digest(period), ()).attempts
    else:
        attempts = _run_attempts(board, run)
        total = len(attempts)
    now_running = _running_tasks(board, running)
    drawn = build_timeline(
        attempts,
        now_running,
        {t.id: t.depends_on for t in snapshot.tasks},
        now=board.wall(),
        total=total,
    )
    titles = {t.id: t.title for t in snapshot.tasks}
    response = json_response(
        {
            "range": asdict(period),
            "runs": [asdict(r) for r in workflow_runs(snapshot.tasks)],
            "run": run.id if run else None,
            "shown": drawn.shown,
            "total": drawn.total,
            "lanes": len(drawn.lanes),
            "critical_path": drawn.critical_path,
            "critical_s": drawn.critical_s,
            "chart": run_charts.gantt_figure(drawn, titles),
        }
    )
    response.set_etag(version)
    return response


def _version(board: Dashboard, key: str, running: list[TaskView]) -> str:
    """Changes whenever an attempt is recorded, a task starts or ends running, and every
    ten seconds while any runs (their bars grow)."""
    newest = board.backend.store.query("SELECT MAX(id) AS newest FROM attempts")[0]["newest"]
    ticking = int(board.wall() // 10) if running else 0
    text = repr((newest, ticking, key, sorted(task.id for task in running)))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def _run(snapshot: EngineSnapshot, wanted: str | None) -> Run | None:
    if not wanted:
        return None
    found = next((run for run in workflow_runs(snapshot.tasks) if run.id == wanted), None)
    if found is None:
        abort(404, description=f"no workflow run {wanted!r}")
    return found


def _run_attempts(board: Dashboard, run: Run) -> list[Attempt]:
    store = board.backend.store
    found = [a for member in (*run.steps, run.id) for a in store.attempts(task_id=member)]
    return sorted(found, key=lambda a: (a.ended_at, a.task_id))


def _running_tasks(board: Dashboard, running: list[TaskView]) -> list[RunningTask]:
    found = []
    for view in running:
        state = board.backend.store.task(view.id)
        if state is not None and state.started_at is not None:
            agent = state.agent or view.agent or "?"
            found.append(RunningTask(view.id, agent, max(1, state.attempts), state.started_at))
    return found


@api.get("/graph")
def graph() -> Response:
    """A workflow run's DAG with each node's status; the run in `run`, else the latest."""
    board = dashboard()
    snapshot = board.backend.snapshot()
    runs = workflow_runs(snapshot.tasks)
    run = _run(snapshot, request.args.get("run")) or _latest_run(runs)
    if run is None:
        return json_response({"runs": [], "run": None, "nodes": [], "edges": [], "chart": None})
    drawn = run_graph(run, snapshot.tasks)
    attempts = _run_attempts(board, run)
    members = {node.id for node in drawn.nodes}
    path, path_s = critical_path(
        task_figures([a for a in attempts if a.task_id in members]),
        {t.id: t.depends_on for t in snapshot.tasks if t.id in members},
    )
    return json_response(
        {
            "runs": [asdict(r) for r in runs],
            "run": run.id,
            "nodes": [asdict(node) for node in drawn.nodes],
            "edges": drawn.edges,
            "critical_path": path,
            "critical_s": path_s,
            "chart": run_charts.graph_figure(drawn, path),
        }
    )


def _latest_run(runs: tuple[Run, ...]) -> Run | None:
    """A run going on now if there is one, else the last by id."""
    active = [run for run in runs if run.status in PENDING]
    chosen = active or list(runs)
    return chosen[-1] if chosen else None
