"""The state database's tables: created when missing, and the columns a newer record has
added to an older database, under one schema version."""

from __future__ import annotations

from dataclasses import MISSING, fields

from sqlite_utils import Database

from vault_bmad.errors import VaultBmadError
from vault_bmad.metrics.records import (
    AgentChange,
    AskRecord,
    Attempt,
    CacheSample,
    PoolSample,
    TaskState,
)

SCHEMA_VERSION = 2  # 2: tokens in and out, cost, calls, truncated


def prepare(db: Database, now: float) -> None:
    """WAL, the tables and indexes, and the schema version; refuse a newer schema."""
    db.enable_wal()
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA analysis_limit = 1000")  # ANALYZE samples: milliseconds at 1M rows
    with db.atomic():
        versions = db.table("schema_version")
        versions.create({"version": int, "applied_at": float}, pk="version", if_not_exists=True)
        found = max((row["version"] for row in versions.rows), default=0)
        if found > SCHEMA_VERSION:
            raise VaultBmadError(
                f"{db.conn} holds schema version {found}; this vault-bmad knows {SCHEMA_VERSION}"
            )
        _create_tables(db)
        _add_newcolumns(db)
        if found < SCHEMA_VERSION:
            versions.insert({"version": SCHEMA_VERSION, "applied_at": now})


def _create_tables(db: Database) -> None:
    tasks = db.table("tasks")
    tasks.create(
        column_types(TaskState), pk="task_id", if_not_exists=True, not_null={"path", "status"}
    )
    tasks.create_index(["status"], index_name="tasks_status", if_not_exists=True)
    attempts = db.table("attempts")
    attempt_columns = {"id": int, **column_types(Attempt), "wait_ms": float, "duration_ms": float}
    attempts.create(
        attempt_columns,
        pk="id",
        if_not_exists=True,
        not_null={"task_id", "agent", "status", "ended_at"},
    )
    # (status, ended_at) serves "by status" and, by skip-scan, "by status since t".
    for columns in (["ended_at"], ["task_id"], ["agent", "ended_at"], ["status", "ended_at"]):
        name = "attempts_" + "_".join(columns)
        attempts.create_index(columns, index_name=name, if_not_exists=True)
    asks = db.table("asks")
    asks.create({"id": int, **column_types(AskRecord)}, pk="id", if_not_exists=True)
    for columns in (["task_id", "current"], ["asked_at"]):
        name = "asks_" + "_".join(columns)
        asks.create_index(columns, index_name=name, if_not_exists=True)
    for record, name in (
        (CacheSample, "cache_samples"),
        (PoolSample, "pool_samples"),
        (AgentChange, "agent_changes"),
    ):
        samples = db.table(name)
        defaults = {
            f.name: f.default for f in fields(record) if f.default is not MISSING
        }  # columns added after the first schema: a row written without them reads well
        samples.create(
            {"id": int, **column_types(record)},
            pk="id",
            if_not_exists=True,
            defaults=defaults,
            not_null=set(defaults),
        )
        for column in defaults.keys() - samples.columns_dict.keys():  # an older database
            samples.add_column(
                column, column_types(record)[column], not_null_default=defaults[column]
            )
        samples.create_index(["at"], index_name=f"{name}_at", if_not_exists=True)


def _add_newcolumns(db: Database) -> None:
    """Columns a newer record has that an older database lacks: NULL in old rows."""
    for table, record in (("tasks", TaskState), ("attempts", Attempt)):
        have = set(db.table(table).columns_dict)
        for name, kind in column_types(record).items():
            if name not in have:
                db.table(table).add_column(name, kind)


def column_types(record: type) -> dict[str, type]:
    """SQLite column types from a record's field annotations ("float | None" -> float)."""
    kinds = {"str": str, "int": int, "float": float, "bool": int}
    return {
        field.name: next(kind for name, kind in kinds.items() if str(field.type).startswith(name))
        for field in fields(record)
    }
