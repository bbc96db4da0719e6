"""The SQLite store in `.vault-bmad/state.db`: task state, attempts, cache and pool samples.

Every write goes through one writer thread fed by a queue, in WAL mode with
synchronous=NORMAL, many queued writes to a commit. Reads use their own connection, so
they never wait for the writer. A read sees what is committed: call `flush()` first to
read your own writes. After a crash `recover()` puts interrupted tasks back to `todo`.

It speaks to SQLite through the standard library's `sqlite3`: its tables come from the
record types, its writes are `executemany` of one INSERT per table, and `vault-bmad run`
starts without a wrapper library's import (tests/test_start_imports.py).
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from vault_bmad.errors import VaultBmadError
from vault_bmad.metrics.records import Attempt, CacheSample, PoolSample, TaskState
from vault_bmad.model.status import IN_PROGRESS

__all__ = [
    "SCHEMA_VERSION",
    "Attempt",
    "CacheSample",
    "PoolSample",
    "Store",
    "TaskState",
]

SCHEMA_VERSION = 1
_BATCH_ITEMS = 1000  # queued writes per commit, at most
_ANALYZE_EVERY = 100_000  # attempts written between refreshes of the planner's statistics
_logger = logging.getLogger(__name__)
_Result = TypeVar("_Result")
_Record = TypeVar("_Record")


@dataclass(frozen=True)
class _Rows:
    """Rows for one table, written by the writer thread."""

    table: str
    rows: list[dict[str, object]]
    replace: bool


@dataclass(frozen=True)
class _Call:
    """A function the writer thread runs inside its transaction; resolved after commit."""

    run: Callable[[sqlite3.Connection], object]
    done: Future[object]


_Item = _Rows | _Call | None  # None stops the writer


class Store:
    """The vault's state database at `path`; one Store per file, safe across threads."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._state_lock = threading.Lock()
        self._closed = False
        self._write_errors = 0
        self._unanalyzed_rows = 0  # touched by the writer thread only
        self._read_lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        ready: Future[None] = Future()
        self._writer = threading.Thread(
            target=self._run_writer, args=(ready,), name="vault-bmad-store-writer", daemon=True
        )
        self._writer.start()
        try:
            ready.result()
        except BaseException:
            self._writer.join()
            self._reader.close()
            raise
        self._reader.execute("PRAGMA query_only = ON")

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def write_errors(self) -> int:
        """How many queued writes failed (each was logged and dropped)."""
        return self._write_errors

    # Writes: queued for the writer thread.

    def save_task(self, state: TaskState) -> None:
        self._put(_Rows("tasks", [_row(state)], replace=True))

    def record_attempt(self, attempt: Attempt) -> None:
        self.record_attempts([attempt])

    def record_attempts(self, attempts: Iterable[Attempt]) -> None:
        rows = [_attempt_row(attempt) for attempt in attempts]
        if rows:
            self._put(_Rows("attempts", rows, replace=False))

    def record_cache_sample(self, sample: CacheSample) -> None:
        self._put(_Rows("cache_samples", [_row(sample)], replace=False))

    def record_pool_sample(self, sample: PoolSample) -> None:
        self._put(_Rows("pool_samples", [_row(sample)], replace=False))

    def recover(self) -> list[TaskState]:
        """Move every queued or running task back to todo; return them, as now stored.

        Call at start-up: those tasks were interrupted, so they run again, and nothing
        that did not finish is ever marked done.
        """
        now = self._clock()
        marks = ", ".join("?" for _ in IN_PROGRESS)

        def move(db: sqlite3.Connection) -> list[TaskState]:
            where = f"status IN ({marks})"
            sql = f"SELECT {_column_list(TaskState)} FROM tasks WHERE {where}"
            rows = db.execute(sql, IN_PROGRESS).fetchall()
            db.execute(
                f"UPDATE tasks SET status = 'todo', updated_at = ? WHERE {where}",
                [now, *IN_PROGRESS],
            )
            moved = (TaskState(*row) for row in rows)
            return sorted((replace(s, status="todo", updated_at=now) for s in moved), key=_id)

        return self._call(move)

    def flush(self) -> None:
        """Wait until every write queued so far is committed."""
        if not self._closed:
            self._call(lambda db: None)

    def close(self) -> None:
        """Commit what is queued, stop the writer thread and close the files. Idempotent."""
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._writer.join()
        with self._read_lock:
            self._reader.close()

    # Reads: on the reader connection.

    def task(self, task_id: str) -> TaskState | None:
        found = self._select(TaskState, "tasks WHERE task_id = ?", [task_id])
        return found[0] if found else None

    def tasks(self, status: str | None = None) -> list[TaskState]:
        where, params = _filters(("status = ?", status))
        return self._select(TaskState, f"tasks{where} ORDER BY task_id", params)

    def attempts(
        self, since: float | None = None, task_id: str | None = None, limit: int = 10_000
    ) -> list[Attempt]:
        """The latest `limit` attempts that ended at or after `since`, oldest first."""
        where, params = _filters(("ended_at >= ?", since), ("task_id = ?", task_id))
        tail = f"attempts{where} ORDER BY ended_at DESC, id DESC LIMIT ?"
        return self._select(Attempt, tail, [*params, limit])[::-1]

    def cache_samples(self, since: float | None = None) -> list[CacheSample]:
        where, params = _filters(("at >= ?", since))
        return self._select(CacheSample, f"cache_samples{where} ORDER BY at, id", params)

    def query(
        self, sql: str, params: Sequence[object] | dict[str, object] = ()
    ) -> list[dict[str, Any]]:
        """The rows of one read-only statement, as dicts: for aggregations such as the
        dashboard's GROUP BY queries. The reader connection refuses writes."""
        with self._read_lock:
            if self._closed:
                raise VaultBmadError(f"the store {self.path} is closed")
            cursor = self._reader.execute(sql, params)
            names = [column[0] for column in cursor.description or ()]
            rows = cursor.fetchall()
        return [dict(zip(names, row, strict=True)) for row in rows]

    # The writer thread.

    def _put(self, item: _Rows | _Call) -> None:
        with self._state_lock:
            if self._closed:
                raise VaultBmadError(f"the store {self.path} is closed")
            self._queue.put(item)

    def _call(self, run: Callable[[sqlite3.Connection], _Result]) -> _Result:
        done: Future[object] = Future()
        self._put(_Call(run, done))
        result: Any = done.result()
        return result  # type: ignore[no-any-return]

    def _select(
        self, record: type[_Record], source: str, params: Sequence[object]
    ) -> list[_Record]:
        """Records of one type from `source` ("table WHERE ... ORDER BY ...")."""
        with self._read_lock:
            if self._closed:
                raise VaultBmadError(f"the store {self.path} is closed")
            sql = f"SELECT {_column_list(record)} FROM {source}"
            rows = self._reader.execute(sql, params).fetchall()
        return [record(*row) for row in rows]

    def _run_writer(self, ready: Future[None]) -> None:
        try:
            db = sqlite3.connect(self.path, isolation_level=None)  # transactions: _atomic
        except BaseException as error:
            ready.set_exception(error)
            return
        try:
            _prepare(db, self.path, self._clock())
        except BaseException as error:
            db.close()
            ready.set_exception(error)
            return
        self._analyze(db)
        ready.set_result(None)
        try:
            while True:
                batch = [self._queue.get()]
                while len(batch) < _BATCH_ITEMS and batch[-1] is not None:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                self._write_batch(db, [item for item in batch if item is not None])
                if batch[-1] is None:
                    return
        finally:
            db.close()

    def _write_batch(self, db: sqlite3.Connection, batch: list[_Rows | _Call]) -> None:
        """One transaction, so one commit, for the whole batch; calls resolve after it."""
        results: dict[int, object] = {}
        errors: dict[int, BaseException] = {}
        try:
            with _atomic(db):
                for group in _group_rows(batch):
                    if isinstance(group, _Rows):
                        self._insert(db, group)
                        continue
                    try:
                        with _atomic(db):
                            results[id(group)] = group.run(db)
                    except Exception as error:
                        errors[id(group)] = error
        except Exception as error:  # the commit failed: nothing in the batch was stored
            self._write_errors += 1
            _logger.exception("could not commit %d queued writes", len(batch))
            errors = {id(item): error for item in batch if isinstance(item, _Call)}
        if self._unanalyzed_rows >= _ANALYZE_EVERY:
            self._analyze(db)
        for item in batch:
            if isinstance(item, _Call):
                if id(item) in errors:
                    item.done.set_exception(errors[id(item)])
                else:
                    item.done.set_result(results.get(id(item)))

    def _analyze(self, db: sqlite3.Connection) -> None:
        """Refresh the statistics the query planner picks indexes by."""
        try:
            db.execute("ANALYZE")
        except sqlite3.Error:
            _logger.exception("could not ANALYZE %s", self.path)
        self._unanalyzed_rows = 0

    def _insert(self, db: sqlite3.Connection, group: _Rows) -> None:
        """Insert rows in a savepoint; if that fails, row by row, dropping only bad rows."""
        try:
            with _atomic(db):
                _insert_rows(db, group)
            if group.table == "attempts":
                self._unanalyzed_rows += len(group.rows)
        except Exception:
            if len(group.rows) > 1:
                for row in group.rows:
                    self._insert(db, _Rows(group.table, [row], group.replace))
                return
            self._write_errors += 1
            _logger.exception("could not write %r to %s", group.rows[0], group.table)


def _group_rows(batch: list[_Rows | _Call]) -> list[_Rows | _Call]:
    """Merge runs of rows for the same table, keeping the order of everything."""
    groups: list[_Rows | _Call] = []
    for item in batch:
        last = groups[-1] if groups else None
        if isinstance(item, _Call):
            groups.append(item)
        elif isinstance(last, _Rows) and (last.table, last.replace) == (item.table, item.replace):
            last.rows.extend(item.rows)
        else:
            groups.append(_Rows(item.table, list(item.rows), item.replace))
    return groups


@contextmanager
def _atomic(db: sqlite3.Connection) -> Iterator[None]:
    """A transaction, or a savepoint inside one: all of the block is written, or none.

    Savepoints may share a name: SQLite releases and rolls back to the latest one."""
    nested = db.in_transaction
    db.execute("SAVEPOINT nested" if nested else "BEGIN")
    try:
        yield
        db.execute("RELEASE nested" if nested else "COMMIT")
    except BaseException:
        if db.in_transaction:  # an error inside SQLite may have ended it already
            db.execute("ROLLBACK TO nested" if nested else "ROLLBACK")
            if nested:
                db.execute("RELEASE nested")
        raise


def _insert_rows(db: sqlite3.Connection, group: _Rows) -> None:
    """One INSERT for the group's rows, which share their keys (rows of one record type)."""
    columns = list(group.rows[0])
    verb = "INSERT OR REPLACE" if group.replace else "INSERT"
    marks = ", ".join("?" for _ in columns)
    sql = f"{verb} INTO {group.table} ({', '.join(columns)}) VALUES ({marks})"
    db.executemany(sql, [[row[column] for column in columns] for row in group.rows])


def _prepare(db: sqlite3.Connection, path: Path, now: float) -> None:
    """WAL, the tables and indexes, and the schema version; refuse a newer schema."""
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA analysis_limit = 1000")  # ANALYZE samples: milliseconds at 1M rows
    with _atomic(db):
        db.execute(
            "CREATE TABLE IF NOT EXISTS schema_version"
            " (version INTEGER PRIMARY KEY, applied_at REAL)"
        )
        found = db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
        if found > SCHEMA_VERSION:
            raise VaultBmadError(
                f"{path} holds schema version {found}; this vault-bmad knows {SCHEMA_VERSION}"
            )
        _create_tables(db)
        if found < SCHEMA_VERSION:
            db.execute("INSERT INTO schema_version VALUES (?, ?)", [SCHEMA_VERSION, now])


def _create_tables(db: sqlite3.Connection) -> None:
    attempt_columns = {**_columns(Attempt), "wait_ms": float, "duration_ms": float}
    _create_table(db, "tasks", _columns(TaskState), key="task_id", not_null={"path", "status"})
    _create_index(db, "tasks", ["status"])
    _create_table(
        db,
        "attempts",
        attempt_columns,
        key="id",
        not_null={"task_id", "agent", "status", "ended_at"},
    )
    # (status, ended_at) serves "by status" and, by skip-scan, "by status since t".
    for columns in (["ended_at"], ["task_id"], ["agent", "ended_at"], ["status", "ended_at"]):
        _create_index(db, "attempts", columns)
    for name, record in (("cache_samples", CacheSample), ("pool_samples", PoolSample)):
        _create_table(db, name, _columns(record), key="id")
        _create_index(db, name, ["at"])


def _create_table(
    db: sqlite3.Connection,
    table: str,
    columns: dict[str, type],
    key: str,
    not_null: Collection[str] = (),
) -> None:
    """The table if missing; `key` is its primary key, an INTEGER one if not a column."""
    sql_types = {str: "TEXT", int: "INTEGER", float: "REAL"}
    declared = [] if key in columns else [f"{key} INTEGER PRIMARY KEY"]
    for name, kind in columns.items():
        extra = (" PRIMARY KEY" if name == key else "") + (" NOT NULL" if name in not_null else "")
        declared.append(f"{name} {sql_types[kind]}{extra}")
    db.execute(f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(declared)})")


def _create_index(db: sqlite3.Connection, table: str, columns: list[str]) -> None:
    name = f"{table}_{'_'.join(columns)}"
    db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({', '.join(columns)})")


def _columns(record: type) -> dict[str, type]:
    """SQLite column types from a record's field annotations ("float | None" -> float)."""
    kinds = {"str": str, "int": int, "float": float}
    return {
        field.name: next(kind for name, kind in kinds.items() if str(field.type).startswith(name))
        for field in fields(record)
    }


def _attempt_row(attempt: Attempt) -> dict[str, object]:
    return {**_row(attempt), "wait_ms": attempt.wait_ms, "duration_ms": attempt.duration_ms}


def _column_list(record: type) -> str:
    """The record's fields as a SELECT list, in the order its constructor takes them."""
    return ", ".join(field.name for field in fields(record))


def _filters(*conditions: tuple[str, object | None]) -> tuple[str, list[object]]:
    """A WHERE clause from the conditions whose value is not None."""
    used = [(sql, value) for sql, value in conditions if value is not None]
    if not used:
        return "", []
    return " WHERE " + " AND ".join(sql for sql, _ in used), [value for _, value in used]


def _id(state: TaskState) -> str:
    return state.task_id


def _row(record: TaskState | Attempt | CacheSample | PoolSample) -> dict[str, object]:
    """A record's fields as a row: a shallow copy, as no field holds a nested record."""
    return dict(vars(record))
