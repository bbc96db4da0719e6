"""The state database's tables, their migration and transactions, on the stdlib `sqlite3`.

Tables come from the record types (`records.py`): one column per field, typed by its
annotation. A newer record's fields become columns of an older database, NULL in old
rows. `atomic` is a transaction, or a savepoint inside one. No wrapper library: `run`
starts without one (tests/test_start_imports.py), and the store's writes are plain
`executemany`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import MISSING, fields
from pathlib import Path

from vault_bmad.errors import VaultBmadError
from vault_bmad.metrics.records import (
    AgentChange,
    AskRecord,
    Attempt,
    CacheSample,
    PoolSample,
    TaskState,
)

SCHEMA_VERSION = 3  # 2: tokens in and out, cost, calls, truncated; 3: an attempt's call_s


@contextmanager
def atomic(db: sqlite3.Connection) -> Iterator[None]:
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


def insert_rows(
    db: sqlite3.Connection, table: str, rows: list[dict[str, object]], *, replace: bool
) -> None:
    """One INSERT for all `rows`, which share their keys (rows of one record type)."""
    columns = list(rows[0])
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    marks = ", ".join("?" for _ in columns)
    sql = f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({marks})"
    db.executemany(sql, [[row[column] for column in columns] for row in rows])


def prepare(db: sqlite3.Connection, path: Path, now: float) -> None:
    """WAL, the tables and indexes, and the schema version; refuse a newer schema."""
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA analysis_limit = 1000")  # ANALYZE samples: milliseconds at 1M rows
    with atomic(db):
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
        _add_new_columns(db)
        if found < SCHEMA_VERSION:
            db.execute("INSERT INTO schema_version VALUES (?, ?)", [SCHEMA_VERSION, now])


_SQL_TYPES = {str: "TEXT", int: "INTEGER", float: "REAL"}
_SAMPLES = (
    ("cache_samples", CacheSample),
    ("pool_samples", PoolSample),
    ("agent_changes", AgentChange),
)


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
    # The rounds of questions agents asked: a task's current conversation, and history.
    _create_table(db, "asks", _columns(AskRecord), key="id", not_null={"task_id", "asked_at"})
    for columns in (["task_id", "current"], ["asked_at"]):
        _create_index(db, "asks", columns)
    for name, record in _SAMPLES:
        # Fields with a default came after the first schema: NOT NULL with that default, so
        # a row written without them reads well, and an older table gains them.
        defaults = _defaults(record)
        _create_table(db, name, _columns(record), key="id", defaults=defaults)
        have = _column_names(db, name)
        for column, value in defaults.items():
            if column not in have:
                kind = _SQL_TYPES[_columns(record)[column]]
                db.execute(
                    f"ALTER TABLE {name} ADD COLUMN {column} {kind} NOT NULL DEFAULT {_sql(value)}"
                )
        _create_index(db, name, ["at"])


def _create_table(
    db: sqlite3.Connection,
    table: str,
    columns: dict[str, type],
    key: str,
    not_null: Collection[str] = (),
    defaults: Mapping[str, object] | None = None,
) -> None:
    """The table if missing; `key` is its primary key, an INTEGER one if not a column;
    a column with a default is NOT NULL with it."""
    defaults = defaults or {}
    declared = [] if key in columns else [f"{key} INTEGER PRIMARY KEY"]
    for name, kind in columns.items():
        extra = " PRIMARY KEY" if name == key else ""
        if name in not_null or name in defaults:
            extra += " NOT NULL"
        if name in defaults:
            extra += f" DEFAULT {_sql(defaults[name])}"
        declared.append(f"{name} {_SQL_TYPES[kind]}{extra}")
    db.execute(f"CREATE TABLE IF NOT EXISTS {table} ({', '.join(declared)})")


def _create_index(db: sqlite3.Connection, table: str, columns: list[str]) -> None:
    name = f"{table}_{'_'.join(columns)}"
    db.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({', '.join(columns)})")


def _add_new_columns(db: sqlite3.Connection) -> None:
    """Columns a newer record has that an older database lacks: NULL in old rows."""
    for table, record in (("tasks", TaskState), ("attempts", Attempt)):
        have = _column_names(db, table)
        for name, kind in _columns(record).items():
            if name not in have:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {_SQL_TYPES[kind]}")


def _column_names(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def _defaults(record: type) -> dict[str, object]:
    return {field.name: field.default for field in fields(record) if field.default is not MISSING}


def _sql(value: object) -> str:
    """A default value as an SQL literal (a number or a string)."""
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return repr(int(value) if isinstance(value, bool) else value)


def _columns(record: type) -> dict[str, type]:
    """SQLite column types from a record's field annotations ("float | None" -> float)."""
    kinds = {"str": str, "int": int, "float": float, "bool": int}
    return {
        field.name: next(kind for name, kind in kinds.items() if str(field.type).startswith(name))
        for field in fields(record)
    }
