"""The SQLite store, on real database files: one writer thread, recovery after a crash."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from vault_bmad.errors import VaultBmadError
from vault_bmad.metrics.digest import PoolPoint
from vault_bmad.metrics.queries import query_digest
from vault_bmad.metrics.store import (
    SCHEMA_VERSION,
    Attempt,
    CacheSample,
    PoolSample,
    Store,
    TaskState,
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "vault" / ".vault-bmad" / "state.db"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fresh_db(db_path: Path, clock: Clock) -> Iterator[Store]:
    with Store(db_path, clock=clock) as store:
        yield store


def attempt(task_id: str, ended_at: float, **fields: object) -> Attempt:
    values: dict[str, object] = {
        "task_id": task_id,
        "agent": "architect",
        "runtime": "template",
        "attempt": 1,
        "status": "done",
        "queued_at": ended_at - 3.0,
        "started_at": ended_at - 2.0,
        "ended_at": ended_at,
    }
    values.update(fields)
    return Attempt(**values)  # type: ignore[arg-type]


def test_task_state_round_trips_and_saves_replace(fresh_db: Store) -> None:
    first = TaskState("t1", "Tasks/One.md", "queued", updated_at=1.0, content_sha="abc")
    fresh_db.save_task(first)
    fresh_db.save_task(TaskState("t2", "Tasks/Two.md", "done", attempts=2, agent="pm"))
    fresh_db.flush()
    assert fresh_db.task("t1") == first
    assert fresh_db.task("missing") is None

    running = TaskState(
        "t1", "Tasks/One.md", "running", attempts=1, agent="architect", started_at=5.0,
        run_id="run-1", error=None, output="Docs/One.md",
    )  # fmt: skip
    fresh_db.save_task(running)
    fresh_db.flush()
    assert fresh_db.task("t1") == running
    assert [s.task_id for s in fresh_db.tasks()] == ["t1", "t2"]
    assert fresh_db.tasks(status="done") == [
        TaskState("t2", "Tasks/Two.md", "done", attempts=2, agent="pm")
    ]


def test_attempts_round_trip_with_wait_and_duration(fresh_db: Store) -> None:
    tried = attempt("t1", 110.0, cache="L2", tokens_in=321, error="boom", status="failed")
    fresh_db.record_attempt(tried)
    fresh_db.record_attempts([attempt("t2", 100.0), attempt("t1", 120.0, attempt=2)])
    fresh_db.flush()
    assert fresh_db.attempts()[0] == attempt("t2", 100.0)
    assert fresh_db.attempts(task_id="t1") == [tried, attempt("t1", 120.0, attempt=2)]
    assert fresh_db.attempts(since=110.0) == [tried, attempt("t1", 120.0, attempt=2)]
    assert fresh_db.attempts(limit=1) == [attempt("t1", 120.0, attempt=2)]
    assert tried.wait_ms == pytest.approx(1000.0) and tried.duration_ms == pytest.approx(2000.0)
    with closing(sqlite3.connect(fresh_db.path)) as raw:
        stored = raw.execute("SELECT wait_ms, duration_ms FROM attempts WHERE error = 'boom'")
        assert stored.fetchone() == pytest.approx((1000.0, 2000.0))


def test_samples_round_trip_in_time_order(fresh_db: Store) -> None:
    late = CacheSample("L1", hits=9, misses=1, evictions=2, expirations=3, size=40, at=20.0)
    early = CacheSample("L3", hits=1, misses=5, evictions=0, expirations=0, size=7, at=10.0)
    fresh_db.record_cache_sample(late)
    fresh_db.record_cache_sample(early)
    fresh_db.record_pool_sample(PoolSample(size=4, busy=3, queued=10, at=10.0))
    fresh_db.record_pool_sample(PoolSample(size=8, busy=8, queued=2, at=30.0))
    fresh_db.flush()
    assert fresh_db.cache_samples() == [early, late]
    assert fresh_db.cache_samples(since=15.0) == [late]
    pool = query_digest(fresh_db, since=0.0, until=40.0, bucket_s=10.0).pool
    assert pool == (PoolPoint(10.0, 10.0, 4, 3, 10), PoolPoint(30.0, 30.0, 8, 8, 2))


def test_one_writer_takes_writes_from_many_threads(fresh_db: Store) -> None:
    def write(thread: int) -> None:
        for number in range(500):
            fresh_db.record_attempt(attempt(f"t{thread}-{number}", float(number)))
            if number % 50 == 0:
                fresh_db.save_task(TaskState(f"t{thread}", "x.md", "running", attempts=number))

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    fresh_db.flush()
    stored = fresh_db.attempts(limit=10_000)
    assert len(stored) == 8 * 500
    assert len({a.task_id for a in stored}) == 8 * 500
    assert {s.task_id: s.attempts for s in fresh_db.tasks()} == {f"t{n}": 450 for n in range(8)}
    assert fresh_db.write_errors == 0
    with closing(sqlite3.connect(fresh_db.path)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_recover_moves_interrupted_tasks_back_to_todo(fresh_db: Store, clock: Clock) -> None:
    for task_id, status in [("a", "running"), ("b", "queued"), ("c", "done"), ("d", "failed")]:
        fresh_db.save_task(TaskState(task_id, f"{task_id}.md", status, updated_at=1.0))
    clock.now = 5_000.0
    moved = fresh_db.recover()
    assert moved == [
        TaskState("a", "a.md", "todo", updated_at=5_000.0),
        TaskState("b", "b.md", "todo", updated_at=5_000.0),
    ]
    assert {s.task_id: s.status for s in fresh_db.tasks()} == {
        "a": "todo",
        "b": "todo",
        "c": "done",
        "d": "failed",
    }
    assert fresh_db.recover() == []


CRASHING_SERVICE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from vault_bmad.metrics.store import Store, TaskState

    store = Store(Path(sys.argv[1]))
    store.save_task(TaskState("running", "Tasks/running.md", "running", attempts=1))
    store.save_task(TaskState("queued", "Tasks/queued.md", "queued"))
    store.save_task(TaskState("finished", "Tasks/finished.md", "done", attempts=1))
    store.flush()
    print("ready", flush=True)
    sys.stdin.read()  # stays up, store open, until killed
    """
)


def test_recover_after_the_service_was_killed(db_path: Path, clock: Clock) -> None:
    service = subprocess.Popen(
        [sys.executable, "-c", CRASHING_SERVICE, str(db_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert service.stdout is not None
        assert service.stdout.readline().strip() == "ready"
        os.kill(service.pid, signal.SIGKILL)
    finally:
        service.kill()
        service.wait()
        for stream in (service.stdin, service.stdout):
            if stream is not None:
                stream.close()
    assert service.returncode == -signal.SIGKILL
    assert db_path.with_name("state.db-wal").exists()  # killed before any checkpoint

    with Store(db_path, clock=clock) as store:
        moved = store.recover()
        assert [(s.task_id, s.status, s.attempts) for s in moved] == [
            ("queued", "todo", 0),
            ("running", "todo", 1),
        ]
        assert store.task("finished") == TaskState("finished", "Tasks/finished.md", "done", 1)
        assert store.tasks(status="running") == []


def test_close_commits_queued_writes_and_is_idempotent(db_path: Path) -> None:
    store = Store(db_path)
    store.record_attempts(attempt(f"t{n}", float(n)) for n in range(100))
    store.close()
    store.close()
    with pytest.raises(VaultBmadError, match="closed"):
        store.record_attempt(attempt("late", 1.0))
    with pytest.raises(VaultBmadError, match="closed"):
        store.tasks()
    store.flush()  # nothing to wait for
    with Store(db_path) as reopened:
        assert len(reopened.attempts()) == 100


def test_a_failed_write_is_counted_and_the_writer_lives_on(fresh_db: Store) -> None:
    fresh_db.save_task(TaskState("bad", None, "todo"))  # type: ignore[arg-type]
    fresh_db.save_task(TaskState("good", "good.md", "todo"))
    fresh_db.flush()
    assert fresh_db.write_errors == 1
    assert [s.task_id for s in fresh_db.tasks()] == ["good"]


def test_schema_version_is_recorded_and_a_newer_one_refused(db_path: Path) -> None:
    Store(db_path).close()
    with closing(sqlite3.connect(db_path)) as raw:
        assert raw.execute("SELECT version FROM schema_version").fetchall() == [(SCHEMA_VERSION,)]
        indexes = {
            row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='index'")
        }
        raw.execute("INSERT INTO schema_version VALUES (?, 0)", [SCHEMA_VERSION + 1])
        raw.commit()
    assert {
        "attempts_ended_at",
        "attempts_task_id",
        "attempts_agent_ended_at",
        "attempts_status_ended_at",
    } <= indexes
    with pytest.raises(VaultBmadError, match="schema version"):
        Store(db_path)


def test_a_store_from_before_ghost_hits_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with closing(sqlite3.connect(path)) as conn:  # the cache_samples table as it first was
        conn.execute(
            "CREATE TABLE cache_samples (id INTEGER PRIMARY KEY, level TEXT, hits INTEGER,"
            " misses INTEGER, evictions INTEGER, expirations INTEGER, size INTEGER, at FLOAT)"
        )
        conn.execute("INSERT INTO cache_samples VALUES (1, 'L1', 1, 2, 0, 0, 1, 5.0)")
        conn.commit()
    with Store(path) as store:
        store.record_cache_sample(CacheSample("L1", 3, 4, 0, 0, 1, 6.0, ghost_hits=2))
        store.flush()
        assert [s.ghost_hits for s in store.cache_samples()] == [0, 2]
        assert store.agent_changes() == []


def test_a_version_1_database_gets_the_new_columns_and_keeps_its_rows(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with closing(sqlite3.connect(db_path)) as raw:  # as vault-bmad 0.1 left it
        raw.executescript(
            """
            CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at FLOAT);
            INSERT INTO schema_version VALUES (1, 0);
            CREATE TABLE tasks (task_id TEXT PRIMARY KEY, path TEXT NOT NULL,
                status TEXT NOT NULL, attempts INTEGER, agent TEXT, error TEXT,
                updated_at FLOAT, run_id TEXT, content_sha TEXT, started_at FLOAT,
                completed_at FLOAT, output TEXT);
            INSERT INTO tasks (task_id, path, status, attempts) VALUES ('t', 'T.md', 'done', 1);
            CREATE TABLE attempts (id INTEGER PRIMARY KEY, task_id TEXT NOT NULL,
                agent TEXT NOT NULL, runtime TEXT, attempt INTEGER, status TEXT NOT NULL,
                queued_at FLOAT, started_at FLOAT, ended_at FLOAT NOT NULL, error TEXT,
                cache TEXT, tokens INTEGER, run_id TEXT, wait_ms FLOAT, duration_ms FLOAT);
            INSERT INTO attempts (task_id, agent, runtime, attempt, status, queued_at,
                started_at, ended_at, cache, tokens)
                VALUES ('t', 'a', 'llm', 1, 'done', 1, 2, 3, 'miss', 99);
            """
        )
        raw.commit()
    with Store(db_path) as store:
        [old] = store.attempts()
        assert (old.tokens_in, old.cost, old.truncated, old.call_s) == (0, None, False, None)
        assert store.task("t") == TaskState("t", "T.md", "done", attempts=1)
        store.record_attempt(attempt("t", 10.0, tokens_in=5, truncated=True, cost=0.25))
        store.flush()
        assert store.attempts()[-1].truncated is True
        assert store.attempts()[-1].cost == 0.25
    with closing(sqlite3.connect(db_path)) as raw:
        versions = [row[0] for row in raw.execute("SELECT version FROM schema_version")]
        assert max(versions) == SCHEMA_VERSION
