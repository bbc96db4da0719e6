"""Plotly figures of runs: the timeline's Gantt and a workflow run's graph. Pure.

As in charts.py: dicts for `Plotly.react`, note text escaped with `plot_text`, local
times as numbers, and WebGL traces past `WEBGL_FROM` points. A bar is a thick line
segment, so ten thousand of them draw as one WebGL trace per status. The critical path's
traces carry `meta: "critical"`: the page draws CRITICAL_COLOR in the theme's own
contrasting colour. A timeline shorter than `MS_AXIS_BELOW_S` reads to the millisecond.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from vault_bmad.metrics.gantt import MS_AXIS_BELOW_S
from vault_bmad.web.charts import (
    Figure,
    format_seconds,
    layout,
    plot_text,
    plot_time,
    status_color,
    trace_kind,
)
from vault_bmad.web.dag import Graph
from vault_bmad.web.timeline import Bar, Timeline

RETRIED_COLOR = "#f2b134"
CRITICAL_COLOR = "#111111"
WAIT_COLOR = "rgba(128, 128, 128, 0.45)"


def gantt_figure(timeline: Timeline, titles: Mapping[str, str]) -> Figure:
    """Bars of attempts in lanes per agent, coloured by status: queue wait as a thin grey
    bar before each, tries that were retried in amber, the critical path outlined."""
    lanes = {lane: number for number, lane in enumerate(timeline.lanes)}
    kind = trace_kind(3 * len(timeline.bars))  # one kind for all, so the layers stack right
    traces: list[dict[str, Any]] = []
    waits = [b for b in timeline.bars if b.started_at > b.queued_at]
    if waits and kind == "scatter":  # at WebGL sizes a wait is a pixel or less: left out
        traces.append(
            _segments(kind, waits, lanes, "queue wait", WAIT_COLOR, 4, lambda b: b.queued_at)
        )
    critical = [b for b in timeline.bars if b.critical]
    if critical:
        outline = _segments(kind, critical, lanes, "critical path", CRITICAL_COLOR, 20)
        traces.append({**outline, "meta": "critical"})
    groups: dict[str, list[Bar]] = {}
    for bar in timeline.bars:
        groups.setdefault("retried" if bar.retried else bar.status, []).append(bar)
    for name in sorted(groups, key=lambda g: (g != "done", g)):
        color = RETRIED_COLOR if name == "retried" else status_color(name)
        traces.append(_segments(kind, groups[name], lanes, name, color, 14))
        traces.append(_hover_points(kind, groups[name], lanes, name, color, titles))
    height = max(260, 34 * len(lanes) + 90)
    xaxis: dict[str, Any] = {"type": "date"}
    if timeline.bars:
        span = max(b.ended_at for b in timeline.bars) - min(b.queued_at for b in timeline.bars)
        if span < MS_AXIS_BELOW_S:
            xaxis["tickformat"] = "%H:%M:%S.%L"
    return {
        "data": traces,
        "layout": layout(
            "gantt",
            height=height,
            xaxis=xaxis,
            yaxis={
                "tickmode": "array",
                "tickvals": list(lanes.values()),
                "ticktext": [plot_text(lane) for lane in lanes],
                "range": [len(lanes) - 0.5, -0.5],
                "zeroline": False,
                "automargin": True,
            },
        ),
    }


def _segments(
    kind: str,
    bars: Sequence[Bar],
    lanes: Mapping[str, int],
    name: str,
    color: str,
    width: int,
    start: Any = None,
) -> dict[str, Any]:
    """One trace of horizontal segments, separated by gaps (None)."""
    xs: list[float | None] = []
    ys: list[int | None] = []
    for bar in bars:
        begin = start(bar) if start else bar.started_at
        end = bar.started_at if start else max(bar.ended_at, bar.started_at + 0.001)
        lane = lanes[bar.lane]
        xs += [plot_time(begin), plot_time(end), None]
        ys += [lane, lane, None]
    return {
        "type": kind,
        "mode": "lines",
        "name": name,
        "legendgroup": name,
        "showlegend": name in ("queue wait", "critical path"),
        "x": xs,
        "y": ys,
        "line": {"color": color, "width": width},
        "hoverinfo": "skip",
        "connectgaps": False,
    }


HOVER = (
    "<b>%{customdata[1]}</b><br>%{customdata[8]} · try %{customdata[2]} · %{customdata[3]}"
    "<br>run %{customdata[4]} · queued %{customdata[5]} · cache %{customdata[6]}"
    "%{customdata[7]}<extra></extra>"
)


def _hover_points(
    kind: str,
    bars: Sequence[Bar],
    lanes: Mapping[str, int],
    name: str,
    color: str,
    titles: Mapping[str, str],
) -> dict[str, Any]:
    """A point in the middle of each bar, carrying what its hover shows, escaped, and first
    the task id as it is, for a click to open."""
    data = [
        [
            bar.task_id,
            plot_text(titles.get(bar.task_id, bar.task_id)),
            bar.attempt,
            plot_text(bar.status),
            format_seconds(bar.ended_at - bar.started_at),
            format_seconds(max(0.0, bar.started_at - bar.queued_at)),
            plot_text(bar.cache),
            "<br>" + plot_text(bar.error[:200]) if bar.error else "",
            plot_text(bar.task_id),
        ]
        for bar in bars
    ]
    return {
        "type": kind,
        "mode": "markers",
        "name": name,
        "legendgroup": name,
        "x": [plot_time((b.started_at + max(b.ended_at, b.started_at)) / 2) for b in bars],
        "y": [lanes[b.lane] for b in bars],
        "marker": {"color": color, "size": 9, "symbol": "line-ns-open"},
        "customdata": data,
        "hovertemplate": HOVER,
    }


def graph_figure(graph: Graph, critical: Sequence[str] = ()) -> Figure:
    """A run's DAG, left to right: nodes coloured by status, the critical path outlined."""
    place = {node.id: (node.column, node.row) for node in graph.nodes}
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    arrows = []
    for dep, task in graph.edges:
        (x0, y0), (x1, y1) = place[dep], place[task]
        edge_x += [x0, x1, None]
        edge_y += [y0, y1, None]
        if len(graph.edges) <= 200:
            arrows.append(
                {
                    "x": x1 - 0.12,
                    "y": y1 - 0.12 * (y1 - y0) / max(0.001, x1 - x0),
                    "ax": x0,
                    "ay": y0,
                    "xref": "x",
                    "yref": "y",
                    "axref": "x",
                    "ayref": "y",
                    "showarrow": True,
                    "arrowhead": 2,
                    "arrowsize": 1.2,
                    "arrowcolor": "rgba(128, 128, 128, 0.8)",
                    "text": "",
                }
            )
    on_path = set(critical)
    nodes = graph.nodes
    hover = [
        f"<b>{plot_text(n.label)}</b><br>{plot_text(n.id)}<br>{plot_text(n.status)}"
        + (f" · {plot_text(n.agent)}" if n.agent else "")
        + (" · outside the run" if n.outside else "")
        for n in nodes
    ]
    data = [
        {
            "type": trace_kind(len(edge_x)),
            "mode": "lines",
            "name": "depends on",
            "x": edge_x,
            "y": edge_y,
            "line": {"color": "rgba(128, 128, 128, 0.6)", "width": 1.5},
            "hoverinfo": "skip",
            "showlegend": False,
        },
        {
            "type": trace_kind(len(nodes)),
            "mode": "markers+text",
            "name": "tasks",
            "x": [n.column for n in nodes],
            "y": [n.row for n in nodes],
            "text": [plot_text(n.label) for n in nodes],
            "textposition": "bottom center",
            "hovertext": hover,
            "hovertemplate": "%{hovertext}<extra></extra>",
            "customdata": [n.id for n in nodes],
            "meta": "critical",
            "marker": {
                "size": 26,
                "color": [status_color(n.status) for n in nodes],
                "symbol": ["diamond" if n.outside else "circle" for n in nodes],
                "line": {
                    "width": [4 if n.id in on_path else 1 for n in nodes],
                    "color": [CRITICAL_COLOR if n.id in on_path else "#ffffff" for n in nodes],
                },
            },
            "showlegend": False,
        },
    ]
    rows = [n.row for n in nodes] or [0.0]
    last_column = max((n.column for n in nodes), default=0)
    return {
        "data": data,
        "layout": layout(
            "graph",
            height=max(320, 90 * (max(rows) - min(rows) + 1) + 80),
            xaxis={"visible": False, "range": [-0.5, last_column + 0.5]},
            yaxis={"visible": False, "range": [min(rows) - 0.7, max(rows) + 0.7]},
            annotations=arrows,
        ),
    }
