"""Task state into task notes: the keys vault-bmad owns, as each task moves on.

A workflow step shares its note with the task that started the run, so steps write only
their output notes; the run's note shows the run as a whole.

The notes are written on write threads, in batches (`engine/note_writes.py`); a task's
`queued` state waits until the engine has dispatched, so a task that starts at once goes
from todo to running.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Container, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass

from vault_bmad.engine.note_writes import KEEP_CALLOUT, NoteWrites
from vault_bmad.errors import Problem, VaultBmadError
from vault_bmad.model.definitions import TaskDef
from vault_bmad.model.fields import listed_texts
from vault_bmad.model.status import NEEDS_INPUT
from vault_bmad.vault.changes import is_conflict_copy
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.notes import Note, parse_note
from vault_bmad.vault.paths import resolve_in_vault
from vault_bmad.vault.writer import (
    ANSWERS_KEY,
    NoteWriter,
    is_stale_copy,
    iso_time,
    owned_values,
    read_note_text,
    unwritable_reason,
    wikilink,
)

log = logging.getLogger(__name__)

_TYPE_TASK = re.compile(r"^type:\s*['\"]?task['\"]?\s*$", re.MULTILINE)


@dataclass(frozen=True)
class NoteQuestions:
    """A note's `questions:` and `answers:` as they are on disk now."""

    questions: tuple[str, ...] = ()
    answers: tuple[str, ...] = ()
    mtime: float | None = None  # when the note was last saved


_CLEARED_ON_START: dict[str, object | None] = {
    "error": None,
    "completed": None,
    "duration_ms": None,
    "result": None,
    "cache": None,
    "truncated": None,
}


class TaskNotes:
    """Writes each task's state into its note, remembering the text it last saw; see the
    module docstring. `close` (or `flush`) before reading the notes back."""

    def __init__(
        self,
        writer: NoteWriter,
        on_written: Callable[[str], object] | None = None,
        on_rerun: Callable[[str], object] | None = None,
    ) -> None:
        """`on_written(path)` hears of each note once it is on disk; `on_rerun(path)` of a
        note set back to `todo` while vault-bmad had its task (on any thread)."""
        self.writer = writer
        self._on_written = on_written or (lambda path: None)
        self._writes = NoteWrites(writer, on_written, on_rerun)
        self._seen = self._writes.seen  # path -> text of the last read or write

    def write_output(
        self, path: str | None, body: str, task_path: str | None, keys: Mapping[str, object]
    ) -> str:
        """Write an output or report note now; returns the path it went to."""
        written = self.writer.write_output(path, body, task_path, keys)
        self._on_written(written)
        return written

    def submit_output(
        self, path: str | None, body: str, task_path: str | None, keys: Mapping[str, object]
    ) -> Future[str]:
        """`write_output` on the output write thread, after the outputs asked for before;
        the future ends once the note is on disk."""
        return self._writes.output(path, body, task_path, keys)

    def publish(self) -> None:
        """The engine has dispatched: the `queued` states held back until now are for tasks
        that did not start at once. They are written when no other state waits; a task
        that starts before then goes from todo to running."""
        self._writes.publish()

    def flush(self) -> None:
        """Wait until every write asked for so far is done."""
        self._writes.flush()

    def close(self) -> None:
        """Finish the writes asked for and stop the write threads."""
        self._writes.close()

    def queued(self, task: TaskDef) -> None:
        """Held back until `publish`; a start before then writes `running` over it."""
        if not task.step:
            changes = {"status": "queued", **_CLEARED_ON_START, "started": None}
            self._write(task.path, changes, hold=True)

    def requeue(self, task: TaskDef) -> None:
        """Back to `todo`: the service stopped before the task finished."""
        self._write(task.path, {"status": "todo"})

    def set_todo(self, task: TaskDef) -> None:
        """Back to `todo` as a user would set it, on the state write thread after the state
        writes asked for before (not the outputs), waiting for it; raises VaultBmadError or
        OSError if the note cannot be written."""
        outcome = self._writes.on_state_thread(
            lambda: self.writer.update(task.path, {"status": "todo"}, None)
        )
        self._seen[task.path] = outcome.text

    def settle_edit(self, path: str) -> bool:
        """The user saved the note of an ended task saying `status: todo`: True when that
        asks for a re-run; False when the file is an old copy of the note (an editor wrote
        back what it had open, `writer.is_stale_copy`), whose keys are then put back, or no
        longer says `todo` (a write-back already put them back). Decided on the state write
        thread after the writes asked for before, so the note's last write is known: the
        file shows a write before `_write_now` can remember it."""
        return self._writes.on_state_thread(lambda: self._settle_edit(path))

    def _settle_edit(self, path: str) -> bool:
        seen = self._seen.get(path)
        try:
            current = read_note_text(self.writer.root, path)
        except (VaultBmadError, OSError):
            return True
        if current is not None and owned_values(current)["status"] not in (None, "todo"):
            return False  # a task note without a status is todo
        if seen is None or current is None or not is_stale_copy(seen, current):
            return True
        self._seen.pop(path, None)  # the restoring write goes onto the note as it is
        self._write(path, owned_values(seen))
        log.info("%s: an old copy of the note was saved over it; its state is put back", path)
        return False

    def forget(self, path: str) -> None:
        """The engine has acted on the user's edit of this note (a re-run): the next write
        goes onto the note as it is then, so the edited keys are no longer the user's own."""
        self._seen.pop(path, None)

    def running(
        self, task: TaskDef, agent_id: str, started: float, attempt: int, *, brief: bool = False
    ) -> None:
        """`brief`: the task ends in a moment (it takes an answer already there), so its
        `running` state is held back like a `queued` one, and its end is usually written
        over it."""
        if task.step:  # the run's note says the run is going; attempts are the step's own
            self._write(task.path, {"status": "running"}, hold=brief)
            return
        changes = {
            "status": "running",
            "attempts": attempt,
            "agent_used": agent_id,
            "started": iso_time(started),
        }
        self._write(task.path, changes, hold=brief)

    def run_started(self, task: TaskDef, started: float) -> None:
        """The first step of a workflow run started: the run's note says so, and when."""
        self._write(
            task.path, {"status": "running", **_CLEARED_ON_START, "started": iso_time(started)}
        )

    def done(
        self,
        task: TaskDef,
        *,
        agent_id: str | None,
        started: float,
        completed: float,
        attempts: int | None,
        cache: str | None,
        output: str,
        truncated: bool = False,
    ) -> None:
        """Done; a workflow run's own task has no attempts or cache of its own (None)."""
        if task.step:
            return
        self._write(
            task.path,
            {
                "status": "done",
                "error": None,
                "started": iso_time(started),
                "completed": iso_time(completed),
                "duration_ms": round((completed - started) * 1000),
                "agent_used": agent_id,
                "attempts": attempts,
                "cache": cache,
                "result": wikilink(output),
                "truncated": True if truncated else None,
            },
        )

    def failed(self, task: TaskDef, error: str, *, completed: float, attempts: int) -> None:
        """A task (or a step, whose run then fails with it) that ran out of attempts."""
        message = f"step {task.step}: {error}" if task.step else error
        self._write(
            task.path,
            {
                "status": "failed",
                "error": message,
                "completed": iso_time(completed),
                "attempts": attempts,
            },
        )

    def ask(self, path: str, questions: list[str], answers: list[str] | None, callout: str) -> None:
        """Questions wait on the note: `needs-input`, the list, the user's answers moved
        beside their questions (None: as they are) and the callout."""
        changes: dict[str, object | None] = {"status": NEEDS_INPUT, "questions": questions}
        if answers is not None:
            changes[ANSWERS_KEY] = answers or None
        self._write(path, changes, callout=callout)

    def show_callout(self, path: str, callout: str | None) -> None:
        self._write(path, {}, callout=callout)

    def questions(self, path: str) -> NoteQuestions:
        """The note's questions and answers as on disk, once the writes asked for are done."""
        self._writes.on_state_thread(lambda: None)
        try:
            file = resolve_in_vault(self.writer.root, path)
            note = parse_note(path, file.read_text(encoding="utf-8-sig"))
            mtime = file.stat().st_mtime
        except (OSError, VaultBmadError, UnicodeDecodeError):
            return NoteQuestions()
        fm = note.frontmatter
        return NoteQuestions(
            listed_texts(fm.get("questions")), listed_texts(fm.get(ANSWERS_KEY)), mtime
        )

    def blocked(self, task: TaskDef, reason: str) -> None:
        if not task.step:
            self._write(task.path, {"status": "blocked", "error": reason})

    def mark_invalid(
        self, index: VaultIndex, problems: Iterable[Problem], paths: Container[str] | None = None
    ) -> dict[str, str]:
        """Write `status: invalid` and the error into each task note that failed validation,
        and return every such note with its error.

        `paths` limits this to the notes that just changed; sync conflict copies are left
        untouched, so as not to make the conflict worse. A note whose frontmatter does
        not parse gets them too when it has a `type: task` line; the writer edits it as text.
        A note vault-bmad may not rewrite (read-only, too big, not UTF-8) is returned but
        left as it is.
        """
        by_path: dict[str, list[str]] = {}
        for problem in problems:
            if not problem.is_error:
                continue  # a warning says how a note was read; the note still runs
            if (paths is None or problem.path in paths) and not is_conflict_copy(problem.path):
                by_path.setdefault(problem.path, []).append(problem.message)
        invalid = {}
        for path, messages in sorted(by_path.items()):
            note = index.get(path)
            if note is None or not (note.type == "task" or _says_task(index, note)):
                continue
            invalid[path] = error = "; ".join(messages)
            if not note.lossy and unwritable_reason(index.root / path) is None:
                self._write(path, {"status": "invalid", "error": error})
        return invalid

    def _write(
        self,
        path: str,
        changes: Mapping[str, object | None],
        *,
        callout: object = KEEP_CALLOUT,
        hold: bool = False,
    ) -> None:
        """Queue `changes` (and the callout: its text, or None to remove it) for the note at
        `path`, merged into a write still waiting; `hold`: see `NoteWrites.state`."""
        self._writes.state(path, changes, callout=callout, hold=hold)


def workflow_run_output(
    task: TaskDef, outputs: Mapping[str, str], skipped: Mapping[str, str]
) -> str:
    """The output of a workflow run: each step's output note, or why the run skipped it
    (`outputs`: task id -> output note; `skipped`: task id -> reason)."""
    lines = [f"# {task.title}", "", f"Workflow run of `{task.workflow}`.", ""]
    for step in task.steps:
        name = step.rsplit("/", 1)[-1]
        if step in outputs:
            lines.append(f"- {name}: {wikilink(outputs[step])}")
        elif step in skipped:
            lines.append(f"- {name}: skipped, {skipped[step]}")
    return "\n".join(lines) + "\n"


def guidance_output(task: TaskDef) -> str:
    """What a guidance step shows in the run: its notes, under its name."""
    return f"# {task.step}\n\n{task.body}\n"


def _says_task(index: VaultIndex, note: Note) -> bool:
    """A note whose frontmatter does not parse, but whose text has a `type: task` line."""
    if not note.error or not note.error.startswith("broken YAML"):
        return False
    try:
        return _TYPE_TASK.search(index.read_text(note.path)) is not None
    except OSError:
        return False
