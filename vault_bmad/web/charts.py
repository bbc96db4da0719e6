"""Plotly figures, as plain dicts, from aggregated data. Pure.

The browser draws them with `Plotly.react` and lays the theme's colours over the layout,
so these figures carry no background or font colours. Every text that may come from a
note (task ids, titles, agent ids) goes through `plot_text`: Plotly reads a few HTML
tags in its labels, and an escaped `<` shows as itself. Traces with more than
`WEBGL_FROM` points use WebGL (scattergl), which stays smooth at ten thousand bars.
Times go out as numbers: Plotly reads a number on a date axis as milliseconds since the
epoch and shows it in UTC, so each is shifted by the local UTC offset of its moment, and
the axes read in local time. Numbers cost a tenth of date strings to make and send.
The timeline's and the workflow graph's figures are in run_charts.py.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from vault_bmad.metrics.figures import AgentFigures
from vault_bmad.metrics.histogram import bin_bounds
from vault_bmad.metrics.series import TimeSeries

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
    "skipped": "#6c8ea3",
    "invalid": "#c2185b",
}
OTHER_COLOR = "#7f7f7f"
SERIES_COLORS = ("#3b7dd8", "#2f9e5b", "#e8870e", "#8a6fdf", "#d64545", "#17a2b8")


def plot_text(text: str) -> str:
    """Text shown by Plotly, with the characters it would read as markup escaped."""
    return html.escape(text, quote=False)


def plot_time(epoch_s: float) -> float:
    """Epoch seconds as local milliseconds for a Plotly date axis (see the docstring)."""
    return round((epoch_s + time.localtime(epoch_s).tm_gmtoff) * 1000.0, 1)


def status_color(status: str) -> str:
    return STATUS_COLORS.get(status, OTHER_COLOR)


def layout(uirevision: str, **extra: Any) -> dict[str, Any]:
    """What every figure shares; `uirevision` keeps zoom and hidden traces across updates."""
    return {
        "uirevision": uirevision,
        "margin": {"l": 56, "r": 16, "t": 16, "b": 40},
        "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        "hovermode": "closest",
        **extra,
    }


def trace_kind(points: int) -> str:
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
        "layout": layout(
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
        "layout": layout(
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
    return {"data": data, "layout": layout(uirevision, xaxis={"type": "date"}, yaxis=yaxis)}


def utilization_figure(agents: Sequence[AgentFigures], out: Sequence[str] = ()) -> Figure:
    """Horizontal bars: each agent's run time over its capacity × the time it had work."""
    names = [plot_text(a.agent + (" (out)" if a.agent in out else "")) for a in agents]
    shares = [a.utilization or 0.0 for a in agents]
    return {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "name": "utilization",
                "y": names,
                "x": shares,
                "text": [
                    f"{a.utilization:.0%}" if a.utilization is not None else "no work"
                    for a in agents
                ],
                "textposition": "auto",
                "marker": {"color": [_load_color(share) for share in shares]},
                "customdata": [round(a.work_s, 3) for a in agents],
                "hovertemplate": "%{y}: %{x:.1%} busy over %{customdata:.1f} s of work"
                "<extra></extra>",
            }
        ],
        "layout": layout(
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
    agents: Sequence[str], times: Sequence[float], rows: Sequence[Sequence[float | None]]
) -> Figure:
    """Agents by time bucket, coloured by utilization; blank where an agent had no work."""
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
        "layout": layout(
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
        "layout": layout(
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
        "layout": layout(
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
        "layout": layout(
            "pool",
            xaxis={"type": "date"},
            yaxis={"rangemode": "tozero", "title": {"text": "workers"}},
        ),
    }
