"""Chart of `vault-bmad bench workload --format json` output, as a PNG for docs/benchmarks.md.

    .venv/bin/vault-bmad bench workload --format json > workload.json
    BROWSER_PATH=/usr/bin/chromium .venv/bin/python benchmarks/workload_chart.py \
        workload.json docs/images/bench_workload.png

Needs kaleido (the `bench` extra) and a Chromium for it to drive.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots


def workload_figure(document: dict[str, object]) -> go.Figure:
    systems = document["systems"]
    assert isinstance(systems, dict)
    names = list(systems)
    figure = make_subplots(
        rows=1,
        cols=3,
        subplot_titles=(
            "makespan (s); dotted: lower bound",
            "throughput (tasks/min)",
            "latency p50 / p95 (ms)",
        ),
    )
    makespans = [systems[n]["makespan_s"] for n in names]
    figure.add_bar(x=names, y=makespans, row=1, col=1, name="makespan", texttemplate="%{y:.1f}")
    bound = document["lower_bound_makespan_s"]
    assert isinstance(bound, float | int)
    figure.add_hline(y=bound, line_dash="dot", row=1, col=1)
    figure.add_bar(
        x=names,
        y=[systems[n]["throughput_per_min"] for n in names],
        row=1,
        col=2,
        name="throughput",
    )
    figure.add_bar(
        x=names, y=[systems[n]["latency_p50_ms"] for n in names], row=1, col=3, name="p50"
    )
    figure.add_bar(
        x=names, y=[systems[n]["latency_p95_ms"] for n in names], row=1, col=3, name="p95"
    )
    low, high = min([*makespans, bound]), max(makespans)
    span = [math.log10(low / 2), math.log10(high * 2)]  # log axes take their range in log10
    figure.update_yaxes(type="log", range=span, row=1, col=1)  # the baseline is an order above
    figure.update_yaxes(type="log", row=1, col=3)  # vault-bmad's p50 is mostly cache hits
    figure.update_layout(
        title=f"bench workload: {document['tasks']} tasks, medians of {document['repeats']},"
        f" times unscaled (scale {document['scale']})",
        width=1200,
        height=420,
        template="plotly_white",
    )
    return figure


def main() -> None:
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    workload_figure(json.loads(source.read_text())).write_image(target)
    print(target)


if __name__ == "__main__":
    main()
