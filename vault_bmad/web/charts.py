"""Plotly figures, as plain dicts, from aggregated data. Pure.

The browser draws them with `Plotly.react` and lays the theme's colours over the layout,
so these figures carry no background or font colours. Every text that may come from a
note (task ids, titles, agent ids) goes through `plot_text`: Plotly reads a few HTML
tags in its labels, and an escaped `<` shows as itself. Traces with more than
`WEBGL_FROM` points use WebGL (scattergl), which stays smooth at ten thousand bars.
Times are local, as "YYYY-MM-DD HH:MM:SS.ffffff" strings Plotly reads on a date axis.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from vault_bmad.metrics.histogram import bin_bounds
from vault_bmad.metrics.series import AgentPeriod, TimeSeries
from vault_bmad.web.dag import Graph
from vault_bmad.web.timeline import Bar, Timeline

Figure = dict[str, Any]

WEBGL_FROM = 2000
STATUS_COLORS: dict[str, str] = {
    "done": "#2f9e5b",
    "failed": "#d64545",
    "timeout": "#e8870e",
    "running": "#3b7dd8",
    "queued": "#8a6fdf",
    "waiting": "#9aa0a6",
    "todo": "#9aa0a6",
    "blocked": "#a0522d",
    "invalid": "#c2185b",
}
OTHER_COLOR = "#7f7f7f"
SERIES_COLORS = ("#3b7dd8", "#2f9e5b", "#e8870e", "#8a6fdf", "#d64545", "#17a2b8")
RETRIED_COLOR = "#f2b134"
CRITICAL_COLOR = "#111111"
WAIT_COLOR = "rgba(128, 128, 128, 0.45)"


def plot_text(text: str) -> str:
    """Text shown by Plotly, with the characters it would read as markup escaped."""
    return html.escape(text, quote=False)


def plot_time(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s).strftime("%Y-%m-%d %H:%M:%S.%f")


def status_color(status: str) -> str:
    return STATUS_COLORS.get(status, OTHER_COLOR)


def _layout(uirevision: str, **extra: Any) -> dict[str, Any]:
    """What every figure shares; `uirevision` keeps zoom and hidden traces across updates."""
    return {
        "uirevision": uirevision,
        "margin": {"l": 56, "r": 16, "t": 16, "b": 40},
        "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        "hovermode": "closest",
        **extra,
    }


def _scatter(points: int) -> str:
    return "scattergl" if points > WEBGL_FROM else "scatter"


def throughput_figure(series: TimeSeries) -> Figure:
    """Stacked bars: attempts that ended done and failed, per minute, per bucket."""
    times = [plot_time(t) for t in series.times]
    data = [
        {
            "type": "bar",
            "name": name,
            "x": times,
            "y": list(series.values[key]),
            "marker": {"color": status_color(status)},
            "hovertemplate": "%{x}<br>%{y:.2f} / min<extra>" + name + "</extra>",
        }
        for name, key, status in (
            ("done", "done_per_min", "done"),
            ("failed", "failed_per_min", "failed"),
        )
    ]
    return {
        "data": data,
        "layout": _layout(
            "throughput",
            barmode="stack",
            bargap=0.1,
            xaxis={"type": "date"},
            yaxis={"title": {"text": "attempts / min"}, "rangemode": "tozero"},
        ),
    }


def latency_figure(counts: Mapping[int, int], marks: Mapping[str, float]) -> Figure:
    """A histogram of latency on a log axis, with a line at each percentile in `marks`."""
    bins = sorted(counts)
    xs: list[float] = []
    ys: list[int] = []
    for number in range(bins[0], bins[-1] + 1) if bins else ():
        low, _ = bin_bounds(number)
        xs.append(low)
        ys.append(counts.get(number, 0))
    if bins:
        xs.append(bin_bounds(bins[-1])[1])
        ys.append(0)
    shapes, notes = [], []
    for number, (name, seconds) in enumerate(sorted(marks.items(), key=lambda m: m[1])):
        color = SERIES_COLORS[number % len(SERIES_COLORS)]
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": seconds,
                "x1": seconds,
                "y0": 0,
                "y1": 1,
                "line": {"color": color, "dash": "dot", "width": 2},
            }
        )
        notes.append(
            {
                "x": _log10(seconds),
                "xref": "x",
                "y": 1 - 0.09 * number,
                "yref": "paper",
                "text": f"{name} {format_seconds(seconds)}",
                "showarrow": False,
                "xanchor": "left",
                "font": {"color": color},
            }
        )
    data = [
        {
            "type": "scatter",
            "name": "attempts",
            "x": xs,
            "y": ys,
            "mode": "lines",
            "line": {"shape": "hv", "color": SERIES_COLORS[0]},
            "fill": "tozeroy",
            "hovertemplate": "from %{x:.3s}s: %{y} attempts<extra></extra>",
        }
    ]
    return {
        "data": data,
        "layout": _layout(
            "latency",
            showlegend=False,
            xaxis={"type": "log", "title": {"text": "latency, queue wait + run (s)"}},
            yaxis={"title": {"text": "attempts"}, "rangemode": "tozero"},
            shapes=shapes,
            annotations=notes,
        ),
    }


def _log10(value: float) -> float:
    """Annotations on a log axis take the exponent."""
    return math.log10(max(value, 1e-9))


def format_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    return f"{seconds / 60:.1f} min"


def rate_lines_figure(
    series: Mapping[str, TimeSeries], key: str, uirevision: str, axis_title: str
) -> Figure:
    """A line per series (cache level), of `values[key]`; rates show as percentages."""
    data = []
    for number, (name, line) in enumerate(series.items()):
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": plot_text(name),
                "x": [plot_time(t) for t in line.times],
                "y": list(line.values.get(key, ())),
                "connectgaps": True,
                "marker": {"size": 4},
                "line": {"color": SERIES_COLORS[number % len(SERIES_COLORS)]},
            }
        )
    rate = key.endswith("rate")
    yaxis: dict[str, Any] = {"title": {"text": axis_title}, "rangemode": "tozero"}
    if rate:
        yaxis |= {"tickformat": ".0%", "range": [0, 1.05]}
    return {"data": data, "layout": _layout(uirevision, xaxis={"type": "date"}, yaxis=yaxis)}


def utilization_figure(agents: Sequence[AgentPeriod], out: Sequence[str] = ()) -> Figure:
    """Horizontal bars: each agent's run time over its capacity and the period."""
    names = [plot_text(a.agent + (" (out)" if a.agent in out else "")) for a in agents]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "name": "utilization",
                "y": names,
                "x": [a.utilization for a in agents],
                "text": [f"{a.utilization:.0%}" for a in agents],
                "textposition": "auto",
                "marker": {"color": [_load_color(a.utilization) for a in agents]},
                "hovertemplate": "%{y}: %{x:.1%} busy<extra></extra>",
            }
        ],
        "layout": _layout(
            "utilization",
            showlegend=False,
            xaxis={"tickformat": ".0%", "range": [0, 1]},
            yaxis={"automargin": True, "autorange": "reversed", "type": "category"},
        ),
    }


def _load_color(share: float) -> str:
    if share >= 0.9:
        return STATUS_COLORS["failed"]
    if share >= 0.7:
        return STATUS_COLORS["timeout"]
    return SERIES_COLORS[0]


def utilization_heatmap(
    agents: Sequence[str], times: Sequence[float], rows: Sequence[Sequence[float]]
) -> Figure:
    """Agents by time bucket, coloured by utilization."""
    return {
        "data": [
            {
                "type": "heatmap",
                "x": [plot_time(t) for t in times],
                "y": [plot_text(a) for a in agents],
                "z": [list(row) for row in rows],
                "zmin": 0,
                "zmax": 1,
                "colorscale": [[0, "rgba(59, 125, 216, 0.04)"], [1, "rgba(59, 125, 216, 1)"]],
                "colorbar": {"tickformat": ".0%", "thickness": 12},
                "hovertemplate": "%{y}<br>%{x}<br>%{z:.0%} busy<extra></extra>",
            }
        ],
        "layout": _layout(
            "utilization-heatmap",
            xaxis={"type": "date"},
            yaxis={"automargin": True, "type": "category", "autorange": "reversed"},
        ),
    }


def load_figure(agents: Sequence[Mapping[str, Any]]) -> Figure:
    """Tasks running on each agent now against its capacity; taken-out agents marked."""
    names = [
        plot_text(str(a["id"]) + ("" if a["state"] == "in_service" else f" ({a['state']})"))
        for a in agents
    ]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "name": "capacity",
                "y": names,
                "x": [a["capacity"] for a in agents],
                "marker": {"color": "rgba(128, 128, 128, 0.25)"},
            },
            {
                "type": "bar",
                "orientation": "h",
                "name": "running now",
                "y": names,
                "x": [a["in_flight"] for a in agents],
                "marker": {"color": status_color("running")},
            },
        ],
        "layout": _layout(
            "load",
            barmode="overlay",
            xaxis={"title": {"text": "tasks at once"}, "dtick": 1, "rangemode": "tozero"},
            yaxis={"automargin": True, "autorange": "reversed", "type": "category"},
        ),
    }


def bars_figure(values: Mapping[str, float], uirevision: str, axis_title: str) -> Figure:
    """Vertical bars, one per key (e.g. attempts by the cache level that served them)."""
    keys = list(values)
    return {
        "data": [
            {
                "type": "bar",
                "x": [plot_text(k) for k in keys],
                "y": [values[k] for k in keys],
                "marker": {
                    "color": [
                        OTHER_COLOR if key == "miss" else SERIES_COLORS[n % len(SERIES_COLORS)]
                        for n, key in enumerate(keys)
                    ]
                },
            }
        ],
        "layout": _layout(
            uirevision,
            showlegend=False,
            xaxis={"type": "category"},
            yaxis={"title": {"text": axis_title}, "rangemode": "tozero"},
        ),
    }


def pool_figure(series: TimeSeries, size_now: int, since: float, now: float) -> Figure:
    """The pool's size, busy workers and queue as steps over the range, carried on to now.

    The pool is sampled when it changes size; the size line starts at the range's first
    sample (or, with none, at the size it has now)."""
    times = [plot_time(t) for t in (since, *series.times, now)]
    data = []
    for number, (key, name) in enumerate(
        (("size", "pool size"), ("busy", "busy"), ("queued", "queued"))
    ):
        values: list[float | None] = list(series.values.get(key, ()))
        first: float | None = None
        last: float | None = values[-1] if values else None
        if key == "size":
            first, last = (values[0] if values else float(size_now)), float(size_now)
        values = [first, *values]
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": name,
                "x": times,
                "y": [*values, last],
                "line": {"shape": "hv", "color": SERIES_COLORS[number]},
            }
        )
    return {
        "data": data,
        "layout": _layout(
            "pool",
            xaxis={"type": "date"},
            yaxis={"rangemode": "tozero", "title": {"text": "workers"}},
        ),
    }


def gantt_figure(timeline: Timeline, titles: Mapping[str, str]) -> Figure:
    """Bars of attempts in lanes per agent, coloured by status: queue wait as a thin grey
    bar before each, tries that were retried in amber, the critical path outlined."""
    lanes = [plot_text(lane) for lane in timeline.lanes]
    kind = _scatter(3 * len(timeline.bars))  # one kind for all, so the layers stack right
    traces: list[dict[str, Any]] = []
    waits = [b for b in timeline.bars if b.started_at > b.queued_at]
    if waits:
        traces.append(_segments(kind, waits, "queue wait", WAIT_COLOR, 4, lambda b: b.queued_at))
    critical = [b for b in timeline.bars if b.critical]
    if critical:
        traces.append(_segments(kind, critical, "critical path", CRITICAL_COLOR, 20))
    groups: dict[str, list[Bar]] = {}
    for bar in timeline.bars:
        groups.setdefault("retried" if bar.retried else bar.status, []).append(bar)
    for name in sorted(groups, key=lambda g: (g != "done", g)):
        color = RETRIED_COLOR if name == "retried" else status_color(name)
        traces.append(_segments(kind, groups[name], name, color, 14))
        traces.append(_hover_points(kind, groups[name], name, color, titles))
    height = max(260, 34 * len(lanes) + 90)
    return {
        "data": traces,
        "layout": _layout(
            "gantt",
            height=height,
            xaxis={"type": "date"},
            yaxis={
                "type": "category",
                "categoryorder": "array",
                "categoryarray": lanes,
                "autorange": "reversed",
                "automargin": True,
            },
        ),
    }


def _segments(
    kind: str,
    bars: Sequence[Bar],
    name: str,
    color: str,
    width: int,
    start: Any = None,
) -> dict[str, Any]:
    """One trace of horizontal segments, separated by gaps (None)."""
    xs: list[str | None] = []
    ys: list[str | None] = []
    for bar in bars:
        begin = start(bar) if start else bar.started_at
        end = bar.started_at if start else max(bar.ended_at, bar.started_at + 0.001)
        lane = plot_text(bar.lane)
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


def _hover_points(
    kind: str, bars: Sequence[Bar], name: str, color: str, titles: Mapping[str, str]
) -> dict[str, Any]:
    """A point in the middle of each bar, carrying its hover text."""
    texts = []
    for bar in bars:
        title = titles.get(bar.task_id, bar.task_id)
        lines = [
            f"<b>{plot_text(title)}</b>",
            f"{plot_text(bar.task_id)} · try {bar.attempt} · {plot_text(bar.status)}",
            f"run {format_seconds(bar.ended_at - bar.started_at)}"
            f" · queued {format_seconds(max(0.0, bar.started_at - bar.queued_at))}"
            f" · cache {plot_text(bar.cache)}",
        ]
        if bar.error:
            lines.append(plot_text(bar.error[:200]))
        texts.append("<br>".join(lines))
    return {
        "type": kind,
        "mode": "markers",
        "name": name,
        "legendgroup": name,
        "x": [plot_time((b.started_at + max(b.ended_at, b.started_at)) / 2) for b in bars],
        "y": [plot_text(b.lane) for b in bars],
        "marker": {"color": color, "size": 9, "symbol": "line-ns-open"},
        "text": texts,
        "hovertemplate": "%{text}<extra></extra>",
        "customdata": [b.task_id for b in bars],
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
            "type": _scatter(len(edge_x)),
            "mode": "lines",
            "name": "depends on",
            "x": edge_x,
            "y": edge_y,
            "line": {"color": "rgba(128, 128, 128, 0.6)", "width": 1.5},
            "hoverinfo": "skip",
            "showlegend": False,
        },
        {
            "type": _scatter(len(nodes)),
            "mode": "markers+text",
            "name": "tasks",
            "x": [n.column for n in nodes],
            "y": [n.row for n in nodes],
            "text": [plot_text(n.label) for n in nodes],
            "textposition": "bottom center",
            "hovertext": hover,
            "hovertemplate": "%{hovertext}<extra></extra>",
            "customdata": [n.id for n in nodes],
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
        "layout": _layout(
            "graph",
            height=max(320, 90 * (max(rows) - min(rows) + 1) + 80),
            xaxis={"visible": False, "range": [-0.5, last_column + 0.5]},
            yaxis={"visible": False, "range": [min(rows) - 0.7, max(rows) + 0.7]},
            annotations=arrows,
        ),
    }
