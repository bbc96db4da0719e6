"""Task state into task notes: the keys vault-bmad owns, as each task moves on.

A workflow step shares its note with the task that started the run, so steps write only
their output notes; the run's note shows the run as a whole.

Notes are written on two write threads, so the engine never waits for the disk: one for
output notes, which a task's dependents wait for, and one for task state, which they do
not. Each thread writes in batches: whatever was asked for while it wrote the last batch
goes in the next, each file fsynced and each folder once per batch. State changes to a
note still waiting for its write merge into that write: a task that is queued, runs and
ends before its turn costs one write, not three. A `queued` state is held back until the
engine has dispatched (`publish`), then written when no other state waits, so a task that
starts at once, or before the write thread is free, goes from todo to running.
`flush` waits until every write asked for so far is on disk.
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
from collections.abc import Callable, Container, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from vault_bmad.errors import Problem, VaultBmadError
from vault_bmad.model.definitions import TaskDef
from vault_bmad.vault.changes import is_conflict_copy
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.notes import Note
from vault_bmad.vault.writer import (
    NoteWriter,
    is_stale_copy,
    iso_time,
    output_note_path,
    owned_values,
    read_note_text,
    sync_folders,
    unwritable_reason,
    wikilink,
)

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_R = TypeVar("_R")

_TYPE_TASK = re.compile(r"^type:\s*['\"]?task['\"]?\s*$", re.MULTILINE)

_SPARE_BATCH = 16  # published `queued` states written in one batch, at most
_STATE_YIELDS_S = 0.2  # longest a state batch waits for the outputs being written
WRITE_THREADS = 4  # notes of one batch written at once, so that their fsyncs overlap

_CLEARED_ON_START: dict[str, object | None] = {
    "error": None,
    "completed": None,
    "duration_ms": None,
    "result": None,
    "cache": None,
    "truncated": None,
}


@dataclass(frozen=True)
class _OutputAsked:
    """An output note `submit_output` was asked for, and the future that tells where it went."""

    written: Future[str]
    path: str | None
    body: str
    task_path: str | None
    keys: Mapping[str, object]


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
        self._on_written = on_written or (lambda path: None)  # after each note is on disk
        self._on_rerun = on_rerun or (lambda path: None)  # see `_write_now`; any thread
        self._seen: dict[str, str] = {}  # path -> text of the last read or write
        self._lock = threading.Lock()  # guards what follows
        self._pending: dict[str, dict[str, object | None]] = {}  # path -> changes to write
        self._held: dict[str, None] = {}  # pending `queued` states waiting for `publish`
        self._spare: dict[str, None] = {}  # published ones, written when nothing else waits
        self._state_due = False  # a batch of state writes is on its way
        self._outputs: list[_OutputAsked] = []
        self._outputs_due = False  # a batch of outputs is on its way
        self._outputs_idle = threading.Event()  # no output waits: state may use the disk
        self._outputs_idle.set()
        self._state_thread = ThreadPoolExecutor(1, thread_name_prefix="vault-bmad-state-writer")
        self._output_thread = ThreadPoolExecutor(1, thread_name_prefix="vault-bmad-output-writer")
        self._write_pool = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="vault-bmad-note")

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
        written: Future[str] = Future()
        with self._lock:
            self._outputs.append(_OutputAsked(written, path, body, task_path, keys))
            due, self._outputs_due = self._outputs_due, True
            self._outputs_idle.clear()
        if not due:
            self._output_thread.submit(self._write_outputs)
        return written

    def publish(self) -> None:
        """Let the `queued` states held back until now be written, when the state write
        thread has nothing else to write: the engine has dispatched, so these tasks did not
        start at once, and a start before their turn writes `running` over them."""
        self._release()

    def flush(self) -> None:
        """Wait until every write asked for so far is done."""
        self._release(now=True)
        for thread in (self._output_thread, self._state_thread):
            thread.submit(lambda: None).result()

    def close(self) -> None:
        """Finish the writes asked for and stop the write threads."""
        self._release(now=True)
        for thread in (self._output_thread, self._state_thread, self._write_pool):
            thread.shutdown(wait=True)

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
        self._release(now=True)
        written = self._state_thread.submit(self.writer.update, task.path, {"status": "todo"}, None)
        self._seen[task.path] = written.result().text

    def settle_edit(self, path: str) -> bool:
        """The user saved the note of an ended task saying `status: todo`: True when that
        asks for a re-run; False when the file is an old copy of the note (an editor wrote
        back what it had open, `writer.is_stale_copy`), whose keys are then put back."""
        seen = self._seen.get(path)
        try:
            current = read_note_text(self.writer.root, path)
        except (VaultBmadError, OSError):
            return True
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
        self, path: str, changes: Mapping[str, object | None], *, hold: bool = False
    ) -> None:
        """Queue `changes` for the note at `path`, merged into a write still waiting; with
        `hold`, a `queued` state (see `publish`)."""
        with self._lock:
            waiting = self._pending.get(path)
            if waiting is None:
                self._pending[path] = dict(changes)
            else:
                waiting.update(changes)
            if hold and (waiting is None or path in self._held or path in self._spare):
                self._held[path] = None
                self._spare.pop(path, None)
                return
            self._held.pop(path, None)
            self._spare.pop(path, None)
            due, self._state_due = self._state_due, True
        if not due:
            self._state_thread.submit(self._write_pending)

    def _release(self, *, now: bool = False) -> None:
        """Held `queued` states become spare ones; with `now`, every held or spare one goes
        in the next batch."""
        with self._lock:
            if not (self._held or (now and self._spare)):
                return
            if not now:
                self._spare.update(self._held)
            self._held.clear()
            if now:
                self._spare.clear()
            due, self._state_due = self._state_due, True
        if not due:
            self._state_thread.submit(self._write_pending)

    def _write_pending(self) -> None:
        """Write every state change waiting, as one batch; `queued` states that were
        published (`publish`) only when nothing else waits, a few at a time. Outputs go
        first: their tasks wait for them, so a batch waits (a little) for them to be done."""
        self._outputs_idle.wait(_STATE_YIELDS_S)
        with self._lock:
            urgent = [p for p in self._pending if p not in self._held and p not in self._spare]
            paths = urgent or list(itertools.islice(self._spare, _SPARE_BATCH))
            batch = {path: self._pending.pop(path) for path in paths}
            for path in paths:
                self._spare.pop(path, None)
            more, self._state_due = bool(self._spare), bool(self._spare)
        if more:  # after this batch, and after any write asked for meanwhile
            self._state_thread.submit(self._write_pending)
        folders: set[Path] = set()

        def write(path: str) -> bool:
            try:
                return self._write_now(path, batch[path], folders)
            except Exception:  # a bug must not silently stop the notes' write-back
                log.exception("writing the state of %s failed", path)
                return False

        wrote = self._each(paths, write)
        written = [path for path, ok in zip(paths, wrote, strict=True) if ok]
        try:
            sync_folders(folders)
        except OSError as exc:
            log.warning("could not sync the folders of %s: %s", ", ".join(written), exc)
        for path in written:
            self._on_written(path)

    def _write_now(
        self, path: str, changes: Mapping[str, object | None], folders: set[Path]
    ) -> bool:
        """Write `changes` into the note; True when its file changed."""
        try:
            outcome = self.writer.update(path, changes, self._seen.get(path), sync_later=folders)
        except (VaultBmadError, OSError) as exc:
            log.warning("could not write the state of %s: %s", path, exc)
            return False
        self._seen[path] = outcome.text
        if outcome.restored:
            log.info("%s: an old copy of the note was saved over it; its state is put back", path)
        elif "status" in outcome.kept and owned_values(outcome.text)["status"] == "todo":
            self._on_rerun(path)  # set back to todo while vault-bmad had it: run it again
        elif outcome.kept:
            log.info("%s: kept the user's own %s", path, ", ".join(outcome.kept))
        return outcome.written

    def _write_outputs(self) -> None:
        """Write every output asked for, in order, as one batch; each future ends once its
        note and folder are on disk."""
        with self._lock:
            batch, self._outputs = self._outputs, []
            self._outputs_due = False
        batch = [asked for asked in batch if asked.written.set_running_or_notify_cancel()]
        folders: set[Path] = set()

        def write(asked: _OutputAsked) -> str | Exception:
            try:
                return self.writer.write_output(
                    asked.path, asked.body, asked.task_path, asked.keys, sync_later=folders
                )
            except Exception as exc:  # the engine sees it, and fails the task
                return exc

        targets = {_target(asked) for asked in batch}
        one_by_one = len(targets) < len(batch)  # two for one note: the first asked comes first
        outcomes = [write(asked) for asked in batch] if one_by_one else self._each(batch, write)
        try:
            sync_folders(folders)
        except OSError as exc:
            outcomes = [exc] * len(batch)
        with self._lock:
            if not self._outputs_due:
                self._outputs_idle.set()
        for asked, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Exception):
                asked.written.set_exception(outcome)
            else:
                self._on_written(outcome)
                asked.written.set_result(outcome)

    def _each(self, items: list[_T], write: Callable[[_T], _R]) -> list[_R]:
        """`write` each item, several at once (their fsyncs overlap): no two may touch one note."""
        if len(items) < 2:
            return [write(item) for item in items]
        return list(self._write_pool.map(write, items))


def _target(asked: _OutputAsked) -> str | None:
    """The note an output is meant for (None when its path is not even valid)."""
    try:
        return output_note_path(asked.path, asked.task_path)
    except (ValueError, VaultBmadError):
        return None


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
