"""The task notes vault-bmad marked invalid, as the store keeps them: read by the engine at
start, and by `check` without opening the store for writing (beside a running `serve`)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path

from vault_bmad.metrics.records import TaskState
from vault_bmad.model.validate import InvalidMark


def invalid_marks(states: Iterable[TaskState]) -> dict[str, InvalidMark]:
    """The latest invalid mark of each task note (by path), from stored `invalid` states."""
    return {
        state.path: InvalidMark(state.content_sha or "", state.error or "")
        for state in sorted(states, key=lambda state: state.updated_at)
    }


def stored_invalid_marks(path: Path) -> dict[str, InvalidMark]:
    """The marks in the store at `path`, read only; none when there is no readable store."""
    if not path.is_file():
        return {}
    columns = ", ".join(field.name for field in fields(TaskState))
    try:
        with contextlib.closing(sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)) as db:
            sql = f"SELECT {columns} FROM tasks WHERE status = 'invalid'"
            return invalid_marks(TaskState(*row) for row in db.execute(sql).fetchall())
    except sqlite3.Error:
        return {}
