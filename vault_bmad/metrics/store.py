"""The SQLite store in `.vault-bmad/state.db`: task state, attempts, cache and pool samples.

Every write goes through one writer thread fed by a queue, in WAL mode with
synchronous=NORMAL, many queued writes to a commit. Reads use their own connection, so
they never wait for the writer. A read sees what is committed: call `flush()` first to
read your own writes. After a crash `recover()` puts interrupted tasks back to `todo`.

A database that cannot be read stops the start with `StoreDamaged`: one line naming the
file and how to start afresh. It is never moved aside by itself, since it holds the run
history; task states come back from the notes. `check()` tells, while serving, whether
the file still reads.

It speaks to SQLite through the standard library's `sqlite3` (tables and transactions:
`schema.py`).
"""

from __future__ import annotations

import logging
import queue
import shlex
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from contextlib import closing
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from vault_bmad.errors import StoreDamaged, VaultBmadError
from vault_bmad.metrics.records import (
    AgentChange,
    AskRecord,
    Attempt,
    CacheSample,
    PoolSample,
    TaskState,
)
from vault_bmad.metrics.schema import SCHEMA_VERSION, atomic, insert_rows, prepare
from vault_bmad.model.status import IN_PROGRESS

__all__ = [
    "SCHEMA_VERSION",
    "AgentChange",
    "AskRecord",
    "Attempt",
    "CacheSample",
    "PoolSample",
    "Store",
    "TaskState",
]

_BATCH_ITEMS = 1000  # queued writes per commit, at most
_ANALYZE_EVERY = 100_000  # attempts written between refreshes of the planner's statistics
_logger = logging.getLogger(__name__)
# What `check` reads on a fresh connection: the first page, the task table, both ends of
# the attempts' time index and their newest row. Milliseconds, whatever the history.
_CHECKS = (
    "SELECT COUNT(*) FROM tasks",
    "SELECT MIN(ended_at), MAX(ended_at) FROM attempts",
    "SELECT * FROM attempts WHERE id = (SELECT MAX(id) FROM attempts)",
)
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
        except BaseException as error:
            self._writer.join()
            self._reader.close()
            if isinstance(error, sqlite3.DatabaseError):
                raise StoreDamaged(damaged_message(path, error)) from None
            raise
        self._reader.execute("PRAGMA query_only = ON")
        self._file_id = _file_id(path)
        if (problem := self.check()) is not None:
            self.close()
            raise StoreDamaged(problem)

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

    def record_ask(self, ask: AskRecord) -> None:
        """A new round of questions (its task's conversation so far stays current)."""
        self._put(_Rows("asks", [_row(ask)], replace=False))

    def record_answers(self, task_id: str, round_: int, answers: str, answered_at: float) -> None:
        """The answers (a JSON list) to round `round_` of the task's current conversation."""
        sql = (
            "UPDATE asks SET answers = ?, answered_at = ? "
            "WHERE task_id = ? AND round = ? AND current = 1"
        )
        self._execute(sql, [answers, answered_at, task_id, round_])

    def end_conversation(self, task_id: str) -> None:
        """The task ended, or runs afresh: its rounds so far are history, not resumed."""
        self._execute("UPDATE asks SET current = 0 WHERE task_id = ? AND current = 1", [task_id])

    def conversations(self) -> list[AskRecord]:
        """Every round of every current conversation, by task and round."""
        return self._select(AskRecord, "asks WHERE current = 1 ORDER BY task_id, round", [])

    def asks(self, since: float | None = None) -> list[AskRecord]:
        """The rounds asked or answered at or after `since`, or still unanswered, oldest
        first."""
        where = ""
        if since is not None:
            where = " WHERE asked_at >= ? OR answered_at >= ? OR answered_at IS NULL"
        params = [] if since is None else [since, since]
        return self._select(AskRecord, f"asks{where} ORDER BY asked_at, id", params)

    def record_agent_change(self, change: AgentChange) -> None:
        self._put(_Rows("agent_changes", [_row(change)], replace=False))

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
            moved = (_record(TaskState, row) for row in rows)
            return sorted((replace(s, status="todo", updated_at=now) for s in moved), key=_id)

        try:
            return self._call(move)
        except sqlite3.DatabaseError as error:
            raise StoreDamaged(damaged_message(self.path, error)) from None

    def check(self) -> str | None:
        """None when the database file reads, else why not, in one line naming the file.

        A fresh read-only connection, so no page cached by the store's own hides damage."""
        if _file_id(self.path) != self._file_id:
            return (
                f"the state database {self.path} was deleted or replaced while vault-bmad "
                "ran; restart vault-bmad to make a new one (what it records until then is lost)"
            )
        try:
            with closing(sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True)) as db:
                for sql in _CHECKS:
                    db.execute(sql).fetchall()
        except sqlite3.Error as error:
            return damaged_message(self.path, error)
        return None

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
        self,
        since: float | None = None,
        task_id: str | None = None,
        limit: int = 10_000,
        *,
        until: float | None = None,
    ) -> list[Attempt]:
        """The latest `limit` attempts that ended at or after `since` (and before `until`),
        oldest first."""
        where, params = _filters(
            ("ended_at >= ?", since), ("ended_at < ?", until), ("task_id = ?", task_id)
        )
        tail = f"attempts{where} ORDER BY ended_at DESC, id DESC LIMIT ?"
        return self._select(Attempt, tail, [*params, limit])[::-1]

    def cache_samples(self, since: float | None = None) -> list[CacheSample]:
        where, params = _filters(("at >= ?", since))
        return self._select(CacheSample, f"cache_samples{where} ORDER BY at, id", params)

    def agent_changes(self) -> list[AgentChange]:
        """Every agent's leaving and coming back into service, in time order."""
        return self._select(AgentChange, "agent_changes ORDER BY at, id", [])

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

    def _execute(self, sql: str, params: Sequence[object]) -> None:
        """Run one write statement on the writer thread, without waiting for it."""
        done: Future[object] = Future()
        done.add_done_callback(lambda ran: _log_failure(ran, sql))
        self._put(_Call(lambda db: db.execute(sql, params), done))

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
        return [_record(record, row) for row in rows]

    def _run_writer(self, ready: Future[None]) -> None:
        try:
            db = sqlite3.connect(self.path, isolation_level=None)  # transactions: atomic
        except BaseException as error:
            ready.set_exception(error)
            return
        try:
            prepare(db, self.path, self._clock())
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
            with atomic(db):
                for group in _group_rows(batch):
                    if isinstance(group, _Rows):
                        self._insert(db, group)
                        continue
                    try:
                        with atomic(db):
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
            with atomic(db):
                insert_rows(db, group.table, group.rows, replace=group.replace)
            if group.table == "attempts":
                self._unanalyzed_rows += len(group.rows)
        except Exception:
            if len(group.rows) > 1:
                for row in group.rows:
                    self._insert(db, _Rows(group.table, [row], group.replace))
                return
            self._write_errors += 1
            _logger.exception("could not write %r to %s", group.rows[0], group.table)


def _log_failure(ran: Future[object], sql: str) -> None:
    if (error := ran.exception()) is not None:
        _logger.error("could not run %s: %s", sql.split(" WHERE")[0], error)


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_dev, status.st_ino


def damaged_message(path: Path, error: Exception) -> str:
    """How to recover from a state database that cannot be read, in one line."""
    return (
        f"the state database {path} cannot be read ({error}); to start afresh, move it aside "
        f"(mv {shlex.quote(str(path))} {shlex.quote(str(path) + '.damaged')}): task states "
        "are read back from the notes, "
        "and the run history it held is lost (sqlite3's .recover may save it)"
    )


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


def _attempt_row(attempt: Attempt) -> dict[str, object]:
    return {**_row(attempt), "wait_ms": attempt.wait_ms, "duration_ms": attempt.duration_ms}


def _record(record: type[_Record], row: Sequence[object]) -> _Record:
    """A record from a row: stored 0/1 read back as bool where the field is one, and NULL
    as the field's default where an older row has no value."""
    values = []
    for field, value in zip(fields(record), row, strict=True):  # type: ignore[arg-type]
        if value is None and field.default is not None and field.default is not MISSING:
            value = field.default
        values.append(bool(value) if str(field.type) == "bool" else value)
    return record(*values)


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


def _row(
    record: TaskState | Attempt | AskRecord | CacheSample | PoolSample | AgentChange,
) -> dict[str, object]:
    """A record's fields as a row: a shallow copy, as no field holds a nested record."""
    return dict(vars(record))
