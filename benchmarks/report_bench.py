"""Benchmark the analyzer and the report note on a day of attempts.

Measures, in one run, in a temporary vault:
- `analyze` (figures, six bottleneck checks, critical path, recommendations) on N attempts
  of one day across 12 agents, in ms, against a pandas/numpy peer computing the same
  figures (overall and per-agent latency percentiles by nearest rank, which the analyzer
  reads from its histogram within 3%; busy time, the time each agent and the vault had
  work, utilization, throughput, errors, waits, hit rate by level), once from the same
  records and once from a frame already built; and checks that both agree on every figure;
- rendering the Markdown and writing the note;
- `write_vault_report` end to end on a real store holding the N attempts, split into its
  stages: reading the store, analyzing, rendering and writing.

Rounds are interleaved and medians reported. Prints one JSON object.
Run: `.venv/bin/python benchmarks/report_bench.py` (about 1 min); `--attempts 576000` is
the design's 400 tasks/min for 24 h; `--quick` for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from vault_bmad.config import STATE_DB, Settings
from vault_bmad.metrics.analyze import Analysis, analyze
from vault_bmad.metrics.histogram import FLOOR_S, RELATIVE_ERROR
from vault_bmad.metrics.records import Attempt
from vault_bmad.metrics.report import NoteLinks, Period, write_report
from vault_bmad.metrics.report_markdown import report_markdown
from vault_bmad.metrics.store import Store
from vault_bmad.model.validate import build_definitions
from vault_bmad.reports import write_vault_report
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.writer import NoteWriter

NOW = 1_700_000_000.0
DAY = 86_400.0
AGENTS = tuple(f"agent-{n:02d}" for n in range(12))
CAPACITIES = {agent: 1 + n % 3 for n, agent in enumerate(AGENTS)}
STATUSES = ("done",) * 90 + ("failed",) * 7 + ("timeout",) * 3
CACHES = ("miss", "miss", "L1", "L1", "L1", "L2", "L3")
CHAIN = 5  # tasks depend on the one before, in chains of this length


def day_of_attempts(total: int, seed: int = 11) -> list[Attempt]:
    rng = random.Random(seed)
    attempts = []
    for number in range(total):
        ended = NOW - DAY + DAY * (number + 1) / total
        duration = rng.lognormvariate(-0.5, 0.8)
        wait = rng.lognormvariate(-3.0, 1.0)
        attempts.append(
            Attempt(
                task_id=f"task-{number}",
                agent=rng.choice(AGENTS),
                runtime="llm",
                attempt=1,
                status=rng.choice(STATUSES),
                queued_at=ended - duration - wait,
                started_at=ended - duration,
                ended_at=ended,
                cache=rng.choice(CACHES),
            )
        )
    return attempts


def dependencies(total: int) -> dict[str, list[str]]:
    return {f"task-{n}": [f"task-{n - 1}"] for n in range(total) if n % CHAIN}


def frame_of(attempts: list[Attempt]) -> pd.DataFrame:
    return pd.DataFrame.from_records(
        [(a.agent, a.status, a.queued_at, a.started_at, a.ended_at, a.cache) for a in attempts],
        columns=["agent", "status", "queued", "started", "ended", "cache"],
    )


def pandas_figures(frame: pd.DataFrame, since: float, until: float) -> dict[str, object]:
    """The peer: the same figures with pandas and numpy (nearest rank = inverted_cdf)."""
    frame = frame[(frame.ended >= since) & (frame.ended < until)]
    frame = frame.assign(
        latency=(frame.ended - frame.queued).clip(lower=0),
        wait=(frame.started - frame.queued).clip(lower=0),
        busy=(frame.ended.clip(upper=until) - frame.started.clip(lower=since)).clip(lower=0),
        done=frame.status == "done",
        start=frame.queued.clip(lower=since),
    )
    frame = frame.sort_values(["start", "ended"])
    grouped = frame.groupby("agent")
    reach = grouped["ended"].transform(lambda e: e.cummax().shift())  # the agent's work so far
    frame = frame.assign(
        work=(frame.ended - np.maximum(frame.start, reach.fillna(frame.start))).clip(lower=0)
    )
    vault_reach = frame.ended.cummax().shift().fillna(frame.start)
    vault_work = float((frame.ended - np.maximum(frame.start, vault_reach)).clip(lower=0).sum())
    grouped = frame.groupby("agent")
    per_agent = grouped.agg(
        attempts=("done", "size"),
        done=("done", "sum"),
        busy=("busy", "sum"),
        work=("work", "sum"),
        mean=("latency", "mean"),
        wait=("wait", "sum"),
        latency_sum=("latency", "sum"),
    )
    quantiles = grouped["latency"].apply(
        lambda s: np.percentile(s.to_numpy(), [50, 95], method="inverted_cdf")
    )
    capacity = pd.Series(CAPACITIES)
    per_agent["utilization"] = per_agent.busy / (capacity * per_agent.work)
    per_agent["wait_share"] = per_agent.wait / per_agent.latency_sum
    overall = np.percentile(frame.latency.to_numpy(), [50, 95, 99], method="inverted_cdf")
    served = frame.cache.value_counts()
    return {
        "overall": overall,
        "agents": per_agent,
        "quantiles": quantiles,
        "error_rate": 1 - frame.done.mean(),
        "throughput": frame.done.sum() / (vault_work / 60),
        "served": served,
    }


def agree(analysis: Analysis, peer: dict[str, object]) -> bool:
    """Every figure the peer computed matches the analyzer's."""
    o = analysis.overall
    overall, agents, quantiles, served = (
        peer["overall"],
        peer["agents"],
        peer["quantiles"],
        peer["served"],
    )
    assert isinstance(overall, np.ndarray) and isinstance(agents, pd.DataFrame)
    assert isinstance(quantiles, pd.Series) and isinstance(served, pd.Series)
    checks = [
        binned(overall, [o.latency_s.get(p) for p in ("p50", "p95", "p99")]),
        math.isclose(float(peer["error_rate"]), o.error_rate),  # type: ignore[arg-type]
        math.isclose(float(peer["throughput"]), o.throughput_per_min),  # type: ignore[arg-type]
    ]
    for figure in analysis.agents:
        row = agents.loc[figure.agent]
        pairs = [
            (row["busy"], figure.busy_s),
            (row["mean"], figure.latency_mean_s),
            (row["utilization"], figure.utilization),
            (row["wait_share"], figure.wait_share),
        ]
        checks += [
            row["attempts"] == figure.attempts and row["done"] == figure.done,
            all(ours is not None and math.isclose(float(theirs), ours) for theirs, ours in pairs),
            binned(quantiles[figure.agent], [figure.latency_s.get(p) for p in ("p50", "p95")]),
        ]
    checks += [served[level.level] == level.hits for level in analysis.levels]
    return all(bool(check) for check in checks)


def binned(exact: object, ours: list[float | None]) -> bool:
    """Percentiles read from the histogram, within its bound of the exact ones."""
    return all(
        mine is not None
        and abs(mine - max(float(value), FLOOR_S))
        <= max(float(value), FLOOR_S) * RELATIVE_ERROR * 1.0001
        for value, mine in zip(exact, ours, strict=True)  # type: ignore[call-overload]
    )


def interleaved(work: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Milliseconds per call, every piece of work once per round."""
    times: dict[str, list[float]] = {name: [] for name in work}
    for _ in range(rounds):
        for name, run in work.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return times


def write_vault(folder: Path, attempts: list[Attempt]) -> Path:
    vault = folder / "vault"
    for agent, capacity in CAPACITIES.items():
        note = vault / "Agents" / f"{agent}.md"
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_text(f"---\ntype: agent\nid: {agent}\ncapacity: {capacity}\n---\n", "utf-8")
    with Store(vault / ".vault-bmad" / STATE_DB) as store:
        for first in range(0, len(attempts), 10_000):
            store.record_attempts(attempts[first : first + 10_000])
        store.flush()
    return vault


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=144_000, help="in the day (100/min)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="10,000 attempts, 2 rounds")
    args = parser.parse_args()
    total, rounds = (10_000, 2) if args.quick else (args.attempts, args.rounds)
    attempts = day_of_attempts(total)
    deps = dependencies(total)
    since, until = NOW - DAY, NOW + 1
    prebuilt = frame_of(attempts)

    def run_analyze() -> Analysis:
        return analyze(attempts, since=since, until=until, capacities=CAPACITIES, dependencies=deps)

    analysis, peer = run_analyze(), pandas_figures(prebuilt, since, until)
    with tempfile.TemporaryDirectory(prefix="report-bench-") as folder:
        vault = write_vault(Path(folder), attempts)
        links = NoteLinks.of(build_definitions(VaultIndex.load(vault)))
        with Store(vault / ".vault-bmad" / STATE_DB) as store:
            times = interleaved(
                {
                    "analyze": run_analyze,
                    "pandas_from_records": lambda: pandas_figures(frame_of(attempts), since, until),
                    "pandas_from_frame": lambda: pandas_figures(prebuilt, since, until),
                    "render_markdown": lambda: report_markdown(analysis, since, until, links),
                    "write_note": lambda: write_report(
                        NoteWriter(vault), analysis, Period(since, until), links
                    ),
                    "store_read": lambda: store.attempts(since=since, limit=10**7),
                    "end_to_end": lambda: write_vault_report(
                        vault, Settings(), DAY, clock=lambda: NOW
                    ),
                },
                rounds,
            )
    median = {name: statistics.median(values) for name, values in times.items()}
    result = {
        "attempts": total,
        "rounds": rounds,
        "bottlenecks_found": sorted({b.kind for b in analysis.bottlenecks}),
        "figures_agree_with_pandas": agree(analysis, peer),
        "ms_median": {name: round(value, 1) for name, value in median.items()},
        "ratios": {
            "analyze_vs_pandas_from_records": round(
                median["analyze"] / median["pandas_from_records"], 2
            ),
            "analyze_vs_pandas_from_frame": round(
                median["analyze"] / median["pandas_from_frame"], 2
            ),
        },
        "us_per_attempt_analyze": round(median["analyze"] * 1000 / total, 2),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
