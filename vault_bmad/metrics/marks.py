"""The task notes vault-bmad marked invalid, as the store keeps them: read by the engine at
start, and by `check` without opening the store for writing (beside a running `serve`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING

from vault_bmad.model.validate import InvalidMark

if TYPE_CHECKING:
    from vault_bmad.metrics.records import TaskState


def invalid_marks(states: Iterable[TaskState]) -> dict[str, InvalidMark]:
    """The latest invalid mark of each task note (by path), from stored `invalid` states."""
    return {
        state.path: InvalidMark(state.content_sha or "", state.error or "")
        for state in sorted(states, key=lambda state: state.updated_at)
    }


def stored_invalid_marks(path: Path) -> dict[str, InvalidMark]:
    """The marks in the store at `path`, read only; none when there is no readable store.
    SQLite and the records are imported only when there is a store to read."""
    if not path.is_file():
        return {}
    import sqlite3

    from vault_bmad.metrics.records import TaskState

    columns = ", ".join(field.name for field in fields(TaskState))
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            sql = f"SELECT {columns} FROM tasks WHERE status = 'invalid'"
            return invalid_marks(TaskState(*row) for row in db.execute(sql).fetchall())
    except sqlite3.Error:
        return {}
