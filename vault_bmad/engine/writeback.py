"""Task state into task notes: the keys vault-bmad owns, as each task moves on.

A workflow step shares its note with the task that started the run, so steps write only
their output notes; the run's note shows the run as a whole.

Notes are written on two write threads, so the engine never waits for the disk (each write
is fsynced twice): one for output notes, which a task's dependents wait for, and one for
task state, which they do not. State changes to a note that is still waiting for its write
merge into that write: a task that is queued, runs and ends before its turn costs one
write, not three. `flush` waits until every write asked for so far is on disk.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Callable, Container, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from vault_bmad.errors import Problem, VaultBmadError
from vault_bmad.model.definitions import TaskDef
from vault_bmad.model.fields import listed_texts
from vault_bmad.model.status import NEEDS_INPUT
from vault_bmad.vault.callout import set_callout
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


@dataclass
class _Pending:
    """Changes to one note waiting for its write: keys, and the callout (when `callout_set`)."""

    changes: dict[str, object | None] = field(default_factory=dict)
    callout: str | None = None
    callout_set: bool = False


_KEEP_CALLOUT = object()  # a write that leaves the callout as it is
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
        self.writer = writer
        self._on_written = on_written or (lambda path: None)  # e.g. keep the index current
        self._on_rerun = on_rerun or (lambda path: None)  # see `_write_now`; any thread
        self._seen: dict[str, str] = {}  # path -> text of the last read or write
        self._pending: dict[str, _Pending] = {}  # path -> changes to write
        self._pending_lock = threading.Lock()
        self._state_thread = ThreadPoolExecutor(1, thread_name_prefix="vault-bmad-state-writer")
        self._output_thread = ThreadPoolExecutor(1, thread_name_prefix="vault-bmad-output-writer")

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
        """`write_output` on the output write thread, after the outputs asked for before."""
        return self._output_thread.submit(self.write_output, path, body, task_path, keys)

    def flush(self) -> None:
        """Wait until every write asked for so far is done."""
        for thread in (self._output_thread, self._state_thread):
            thread.submit(lambda: None).result()

    def close(self) -> None:
        """Finish the writes asked for and stop the write threads."""
        for thread in (self._output_thread, self._state_thread):
            thread.shutdown(wait=True)

    def queued(self, task: TaskDef) -> None:
        if not task.step:
            self._write(task.path, {"status": "queued", **_CLEARED_ON_START, "started": None})

    def requeue(self, task: TaskDef) -> None:
        """Back to `todo`: the service stopped before the task finished."""
        self._write(task.path, {"status": "todo"})

    def set_todo(self, task: TaskDef) -> None:
        """Back to `todo` as a user would set it, on the state write thread after the state
        writes asked for before (not the outputs), waiting for it; raises VaultBmadError or
        OSError if the note cannot be written."""
        written = self._state_thread.submit(self.writer.update, task.path, {"status": "todo"}, None)
        self._seen[task.path] = written.result().text

    def settle_edit(self, path: str) -> bool:
        """The user saved the note of an ended task saying `status: todo`: True when that
        asks for a re-run; False when the file is an old copy of the note (an editor wrote
        back what it had open, `writer.is_stale_copy`), whose keys are then put back, or no
        longer says `todo` (a write-back already put them back). Decided on the state write
        thread after the writes asked for before, so the note's last write is known: the
        file shows a write before `_write_now` can remember it."""
        return self._state_thread.submit(self._settle_edit, path).result()

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

    def running(self, task: TaskDef, agent_id: str, started: float, attempt: int) -> None:
        if task.step:  # the run's note says the run is going; attempts are the step's own
            self._write(task.path, {"status": "running"})
            return
        self._write(
            task.path,
            {
                "status": "running",
                "attempts": attempt,
                "agent_used": agent_id,
                "started": iso_time(started),
            },
        )

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
        self._state_thread.submit(lambda: None).result()
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
        self, path: str, changes: Mapping[str, object | None], *, callout: object = _KEEP_CALLOUT
    ) -> None:
        """Queue `changes` (and the callout: its text, or None to remove it) for the note at
        `path`, merged into a write still waiting."""
        with self._pending_lock:
            waiting = self._pending.get(path)
            new = waiting is None
            waiting = waiting or _Pending()
            waiting.changes.update(changes)
            if callout is not _KEEP_CALLOUT:
                assert callout is None or isinstance(callout, str)
                waiting.callout, waiting.callout_set = callout, True
            self._pending[path] = waiting
        if new:
            self._state_thread.submit(self._write_pending, path)

    def _write_pending(self, path: str) -> None:
        with self._pending_lock:
            pending = self._pending.pop(path)
        try:
            self._write_now(path, pending)
        except Exception:  # a bug must not silently stop the notes' write-back
            log.exception("writing the state of %s failed", path)

    def _write_now(self, path: str, pending: _Pending) -> None:
        edit = functools.partial(set_callout, callout=pending.callout)
        try:
            outcome = self.writer.update(
                path,
                pending.changes,
                self._seen.get(path),
                body_edit=edit if pending.callout_set else None,
            )
        except (VaultBmadError, OSError) as exc:
            log.warning("could not write the state of %s: %s", path, exc)
            return
        self._seen[path] = outcome.text
        if outcome.written:
            self._on_written(path)
        if outcome.restored:
            log.info("%s: an old copy of the note was saved over it; its state is put back", path)
        elif "status" in outcome.kept and owned_values(outcome.text)["status"] == "todo":
            self._on_rerun(path)  # set back to todo while vault-bmad had it: run it again
        elif outcome.kept:
            log.info("%s: kept the user's own %s", path, ", ".join(outcome.kept))


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
