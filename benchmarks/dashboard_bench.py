"""Benchmark the dashboard's data endpoints over a store of a million attempts.

Measures, in one run, on a real `Service` over a temporary vault whose store holds N
attempts spread over 7 days (about 6,000 in the last hour, 143,000 in the last day), 12
agents, a cache sample per level every 30 s and a pool sample a minute:
- each endpoint's latency through Flask's test client, in ms (median and p95 of the
  repeats): "warm" is a running dashboard, whose closed buckets are cached; "cold" is the
  first request of a new app, which aggregates the whole range in SQLite;
- the peer, in the same run: what the report does, loading the range's attempts as
  records and running `analyze` on them in Python (the way a dashboard without SQL
  aggregation would work), and the size of those rows as JSON against the answer's size.

Prints one JSON object.
Run: `.venv/bin/python benchmarks/dashboard_bench.py` (about 3 minutes; `--attempts 50000
--repeat 3` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import asdict
from pathlib import Path

from vault_bmad.bench.history import AGENTS, NOW, SPAN, generated_attempts
from vault_bmad.config import load_settings
from vault_bmad.metrics.analyze import analyze
from vault_bmad.metrics.store import Store
from vault_bmad.service import Service
from vault_bmad.web.app import create_app

RANGES = {"1h": 3600.0, "24h": 86_400.0, "all": None}


def build_store(path: Path, total: int) -> None:
    """N attempts (`bench.history`, as in store_bench), cache and pool samples, written
    directly."""
    Store(path).close()  # the schema and indexes
    columns = [*vars(next(generated_attempts(1, 1))[0]), "wait_ms", "duration_ms"]
    insert = f"INSERT INTO attempts ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    with closing(sqlite3.connect(path)) as conn:
        for rows in generated_attempts(total, 20_000):
            conn.executemany(insert, [(*vars(a).values(), a.wait_ms, a.duration_ms) for a in rows])
        samples = []
        hits = dict.fromkeys(("L1", "L2", "L3"), 0)
        for step in range(int(SPAN // 30)):
            at = NOW - SPAN + step * 30
            for number, level in enumerate(hits):
                hits[level] += 30 - 8 * number
                samples.append((level, hits[level], hits[level] // 2, step, 0, 500, at))
        conn.executemany(
            "INSERT INTO cache_samples (level, hits, misses, evictions, expirations, size, at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            samples,
        )
        conn.executemany(
            "INSERT INTO pool_samples (size, busy, queued, at) VALUES (?, ?, ?, ?)",
            [(8, 4, 2, NOW - SPAN + minute * 60) for minute in range(int(SPAN // 60))],
        )
        conn.commit()
        conn.execute("ANALYZE")


def write_vault(vault: Path) -> None:
    for agent in AGENTS:
        note = vault / "Agents" / f"{agent}.md"
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_text(f"---\ntype: agent\nid: {agent}\ncapacity: 4\n---\nWorks.\n")


def timed(run: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return {"p50": round(statistics.median(ordered), 2), "p95": round(p95, 2), "n": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15, help="warm requests per endpoint")
    parser.add_argument("--cold", type=int, default=3, help="cold requests per range")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="dashboard-bench-") as folder:
        vault = Path(folder) / "vault"
        write_vault(vault)
        build_store(vault / ".vault-bmad" / "state.db", args.attempts)
        isolated = {"XDG_CONFIG_HOME": str(Path(folder) / "xdg")}
        settings = load_settings(vault, None, isolated, overrides={"port": 0})
        service = Service(vault, settings)
        service.start()
        try:
            result = measure(service, args)
        finally:
            service.stop()
    print(json.dumps(result, indent=2))


def measure(service: Service, args: argparse.Namespace) -> dict[str, object]:
    clock = lambda: NOW + 5.0  # noqa: E731 - the data's "now", so ranges hold what they say
    client = create_app(service, wall=clock).test_client()
    endpoints = {
        f"/api/{name}?since={span}": None
        for span in RANGES
        for name in ("metrics", "agents", "cache", "timeline")
    }
    endpoints |= {"/api/tasks": None, "/api/analysis?since=1h": None}
    warm: dict[str, dict[str, float]] = {}
    sizes: dict[str, int] = {}
    for url in endpoints:
        answer = client.get(url)
        assert answer.status_code == 200, (url, answer.status_code)
        sizes[url] = len(answer.data)
    for url in endpoints:  # interleaved would mix cache states; each alone, warm
        warm[url] = summary(timed(lambda u=url: client.get(u), args.repeat))  # type: ignore[misc]
    cold: dict[str, dict[str, float]] = {}
    for span in RANGES:
        samples = []
        for _ in range(args.cold):
            fresh = create_app(service, wall=clock).test_client()
            samples += timed(lambda f=fresh, s=span: f.get(f"/api/metrics?since={s}"), 1)  # type: ignore[misc]
        cold[f"/api/metrics?since={span}"] = summary(samples)
    peers: dict[str, object] = {}
    store = service.store
    capacities = {agent: 4 for agent in AGENTS}
    for span, seconds in RANGES.items():
        since = NOW - seconds if seconds else 0.0
        loaded: list[int] = []

        def peer(since: float = since, loaded: list[int] = loaded) -> None:
            attempts = store.attempts(since=since, limit=args.attempts + 1)
            loaded.append(len(attempts))
            analyze(attempts, since=since, until=NOW + 5.0, capacities=capacities)

        runs = 1 if seconds is None else args.cold
        times = timed(peer, runs)
        sample = store.attempts(since=since, limit=10_000)
        row_bytes = len(json.dumps([asdict(a) for a in sample])) / max(1, len(sample))
        peers[span] = {
            "attempts_in_range": loaded[-1],
            "load_and_analyze_ms": summary(times),
            "raw_rows_json_mb": round(row_bytes * loaded[-1] / 1e6, 1),
            "metrics_answer_kb": round(sizes[f"/api/metrics?since={span}"] / 1e3, 1),
            "warm_metrics_speedup": round(
                statistics.median(times) / warm[f"/api/metrics?since={span}"]["p50"], 1
            ),
            "cold_metrics_speedup": round(
                statistics.median(times) / cold[f"/api/metrics?since={span}"]["p50"], 1
            ),
        }
    return {
        "attempts": args.attempts,
        "repeat": args.repeat,
        "warm_ms": warm,
        "cold_ms": cold,
        "answer_kb": {url: round(size / 1e3, 1) for url, size in sizes.items()},
        "peer_load_and_analyze": peers,
    }


if __name__ == "__main__":
    main()
