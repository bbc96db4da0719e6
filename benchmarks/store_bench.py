"""Benchmark the metrics store at a million attempts.

Measures, in one run, in a temporary folder:
- inserting N attempts through `Store.record_attempts` in batches (each batch flushed,
  so committed), in attempts/s, against the floor: plain sqlite3 `executemany` into the
  same schema, same indexes, WAL and synchronous=NORMAL, one commit per batch;
- the dashboard's typical queries, each repeated, in ms (median and p95): latency
  p50/p95 per agent over the last hour, counts by status (all time and last hour),
  attempts per minute over the last hour, one agent's last hour, one task's history and
  `Store.attempts(since=an hour ago)`; first with the store's indexes, then with the
  four attempts indexes dropped, and the ratio.

The attempts span 7 days ending at a fixed "now", about 6,000 an hour at 1M, across 12
agents. Prints one JSON object.
Run: `.venv/bin/python benchmarks/store_bench.py --attempts 1000000` (about 2 minutes).
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
from pathlib import Path

from vault_bmad.bench.history import AGENTS, NOW, generated_attempts
from vault_bmad.metrics.store import Store

HOUR = 3600.0
INDEXES = (
    "attempts_ended_at",
    "attempts_task_id",
    "attempts_agent_ended_at",
    "attempts_status_ended_at",
)


def insert_through_store(store: Store, total: int, batch: int) -> float:
    """Seconds spent in record_attempts + flush, batch by batch."""
    spent = 0.0
    for rows in generated_attempts(total, batch):
        start = time.perf_counter()
        store.record_attempts(rows)
        store.flush()
        spent += time.perf_counter() - start
    return spent


def insert_raw(path: Path, total: int, batch: int) -> float:
    """The floor: executemany into the same schema, one commit per batch."""
    Store(path).close()  # the same tables and indexes
    columns = [*vars(next(generated_attempts(1, 1))[0]), "wait_ms", "duration_ms"]
    sql = f"INSERT INTO attempts ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    spent = 0.0
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA synchronous = NORMAL")
        for rows in generated_attempts(total, batch):
            start = time.perf_counter()
            values = [(*vars(a).values(), a.wait_ms, a.duration_ms) for a in rows]
            conn.executemany(sql, values)
            conn.commit()
            spent += time.perf_counter() - start
    return spent


def percentile(ordered: list[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency_by_agent(conn: sqlite3.Connection) -> object:
    by_agent: dict[str, list[float]] = {}
    for agent, duration in conn.execute(
        "SELECT agent, duration_ms FROM attempts WHERE ended_at >= ?", [NOW - HOUR]
    ):
        by_agent.setdefault(agent, []).append(duration)
    return {
        agent: (percentile(sorted(values), 0.5), percentile(sorted(values), 0.95))
        for agent, values in by_agent.items()
    }


def dashboard_queries(store: Store, conn: sqlite3.Connection) -> dict[str, Callable[[], object]]:
    def rows(sql: str, *params: object) -> Callable[[], object]:
        return lambda: conn.execute(sql, params).fetchall()

    recent_task = f"task-{conn.execute('SELECT MAX(id) FROM attempts').fetchone()[0] // 3 - 10}"
    return {
        "latency_p50_p95_by_agent_last_hour": lambda: latency_by_agent(conn),
        "count_by_status_all_time": rows("SELECT status, COUNT(*) FROM attempts GROUP BY status"),
        "count_by_status_last_hour": rows(
            "SELECT status, COUNT(*) FROM attempts WHERE ended_at >= ? GROUP BY status",
            NOW - HOUR,
        ),
        "attempts_per_minute_last_hour": rows(
            "SELECT CAST(ended_at / 60 AS INTEGER) AS minute, COUNT(*) FROM attempts"
            " WHERE ended_at >= ? GROUP BY minute ORDER BY minute",
            NOW - HOUR,
        ),
        "one_agent_last_hour": rows(
            "SELECT duration_ms, status FROM attempts WHERE agent = ? AND ended_at >= ?",
            AGENTS[3],
            NOW - HOUR,
        ),
        "one_task_history": rows(
            "SELECT * FROM attempts WHERE task_id = ? ORDER BY ended_at", recent_task
        ),
        "store.attempts(since=last_hour)": lambda: store.attempts(since=NOW - HOUR),
    }


def time_queries(queries: dict[str, Callable[[], object]], repeat: int) -> dict[str, list[float]]:
    """Milliseconds per run, the queries interleaved round by round."""
    times: dict[str, list[float]] = {name: [] for name in queries}
    for _ in range(repeat):
        for name, query in queries.items():
            start = time.perf_counter()
            query()
            times[name].append((time.perf_counter() - start) * 1000.0)
    return times


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50": round(statistics.median(ordered), 3), "p95": round(percentile(ordered, 0.95), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=15, help="runs of each query")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="store-bench-") as folder:
        raw_seconds = insert_raw(Path(folder) / "raw.db", args.attempts, args.batch)
        path = Path(folder) / ".vault-bmad" / "state.db"
        with Store(path) as store, closing(sqlite3.connect(path)) as conn:
            store_seconds = insert_through_store(store, args.attempts, args.batch)
            assert store.write_errors == 0
            queries = dashboard_queries(store, conn)
            indexed = time_queries(queries, args.repeat)
            for name in INDEXES:
                conn.execute(f"DROP INDEX {name}")
            unindexed = time_queries(queries, args.repeat)
            size_mb = path.stat().st_size / 1e6

    result = {
        "attempts": args.attempts,
        "batch": args.batch,
        "repeat": args.repeat,
        "db_mb": round(size_mb, 1),
        "insert": {
            "store_attempts_per_s": round(args.attempts / store_seconds),
            "raw_executemany_attempts_per_s": round(args.attempts / raw_seconds),
            "store_vs_raw": round(raw_seconds / store_seconds, 2),
        },
        "queries_ms": {
            name: {
                "indexed": summary(indexed[name]),
                "unindexed": summary(unindexed[name]),
                "speedup_p50": round(
                    statistics.median(unindexed[name]) / statistics.median(indexed[name]), 1
                ),
            }
            for name in queries
        },
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
