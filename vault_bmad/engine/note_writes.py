"""The write-back's writing: state merged per note, and every note written in batches.

Notes are written on write threads, so the engine never waits for the disk. Output
notes, which a task and its dependents wait for, are written at once, several at a time
(their fsyncs overlap; two for one note in the order asked), each done as soon as its note
is on disk under its name. Task state, which nothing waits for, is written in batches by
one thread: whatever was asked for while it wrote the last batch goes in the next, several
notes at once, each folder fsynced once per batch. A batch first fsyncs the folders that
outputs went to since the last one, so a note says `done` only once its output is there
for good, and the output's own wait is one fsync, not two. Outputs come first: a state
batch waits a little while outputs are being written.
State changes to a note still waiting for its write merge into that write: a task that is
queued, runs and ends before its turn costs one write, not three.

A `queued` state is held back (`hold`) until the engine has dispatched (`publish`), then
written only when no other state waits, a few at a time: a task that starts at once, or
before the write thread is free, goes from todo to running, and its note never says
queued. `flush` waits until every write asked for so far is on disk.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from vault_bmad.errors import VaultBmadError
from vault_bmad.vault.callout import set_callout
from vault_bmad.vault.writer import NoteWriter, output_note_path, owned_values, sync_folders

log = logging.getLogger(__name__)
_T = TypeVar("_T")
_R = TypeVar("_R")

STATE_BATCH = 16  # state notes written in one batch, at most (outputs may come between)
STATE_YIELDS_S = 0.2  # longest a state batch waits for the outputs being written
WRITE_THREADS = 4  # notes of one batch written at once, so that their fsyncs overlap
# Output notes written at once: a burst of cache hits (the twins of a request that just
# ended) ends together, and each task waits for its own note; with 4, the last of ten
# waited ~20 ms in line for a write of ~7 ms (docs/benchmarks.md, "Engine overhead").
OUTPUT_THREADS = 16
KEEP_CALLOUT = object()  # a write that leaves the callout as it is


@dataclass
class _Pending:
    """Changes to one note waiting for its write: keys, and the callout (when `callout_set`)."""

    changes: dict[str, object | None] = field(default_factory=dict)
    callout: str | None = None
    callout_set: bool = False


@dataclass(frozen=True)
class _OutputAsked:
    """An output note asked for, and the future that tells where it went."""

    written: Future[str]
    path: str | None
    body: str
    task_path: str | None
    keys: Mapping[str, object]


class NoteWrites:
    """State changes and output notes, written on the write threads; see the module
    docstring. `seen` holds the text of each note as last read or written.

    `on_written(path)` hears of each note written, once it is on disk; `on_rerun(path)` of
    a note set back to `todo` while vault-bmad had its task (any thread)."""

    def __init__(
        self,
        writer: NoteWriter,
        on_written: Callable[[str], object] | None = None,
        on_rerun: Callable[[str], object] | None = None,
    ) -> None:
        self.writer = writer
        self._on_written = on_written or (lambda path: None)
        self._on_rerun = on_rerun or (lambda path: None)
        self.seen: dict[str, str] = {}  # path -> text of the last read or write
        self._lock = threading.Lock()  # guards what follows
        self._pending: dict[str, _Pending] = {}  # path -> changes to write
        self._held: dict[str, None] = {}  # pending `queued` states waiting for `publish`
        self._spare: dict[str, None] = {}  # published ones, written when nothing else waits
        self._state_due = False  # a batch of state writes is on its way
        self._outputs_waiting = 0  # asked for, not yet written
        self._last_output: dict[str | None, Future[str]] = {}  # each note's latest asked for
        self._outputs_idle = threading.Event()  # no output waits: state may use the disk
        self._outputs_idle.set()
        self._unsynced: set[Path] = set()  # folders outputs went to, to fsync before state
        self._state_thread = ThreadPoolExecutor(1, thread_name_prefix="vault-bmad-state-writer")
        # Each write thread's own helpers, so that state never queues ahead of outputs.
        self._state_pool = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="vault-bmad-st")
        self._output_pool = ThreadPoolExecutor(OUTPUT_THREADS, thread_name_prefix="vault-bmad-out")

    def state(
        self,
        path: str,
        changes: Mapping[str, object | None],
        *,
        callout: object = KEEP_CALLOUT,
        hold: bool = False,
    ) -> None:
        """Queue `changes` (and the callout: its text, or None to remove it) for the note at
        `path`, merged into a write still waiting; with `hold`, a `queued` state."""
        with self._lock:
            waiting = self._pending.get(path)
            pending = self._pending.setdefault(path, _Pending())
            pending.changes.update(changes)
            if callout is not KEEP_CALLOUT:
                assert callout is None or isinstance(callout, str)
                pending.callout, pending.callout_set = callout, True
            if hold and (waiting is None or path in self._held or path in self._spare):
                self._held[path] = None
                self._spare.pop(path, None)
                return
            self._held.pop(path, None)
            self._spare.pop(path, None)
            due, self._state_due = self._state_due, True
        if not due:
            self._state_thread.submit(self._write_pending)

    def output(
        self, path: str | None, body: str, task_path: str | None, keys: Mapping[str, object]
    ) -> Future[str]:
        """`NoteWriter.write_output` on a write thread at once, several at a time, after the
        outputs asked for before for the same note; the future ends once the note is on disk
        under its name (its folder is fsynced before the next state batch)."""
        asked = _OutputAsked(Future(), path, body, task_path, keys)
        target = _target(asked)
        with self._lock:
            self._outputs_waiting += 1
            self._outputs_idle.clear()
            before = self._last_output.get(target)
            self._last_output[target] = asked.written
        if before is None:
            self._output_pool.submit(self._write_output, asked, target)
        else:  # after it, whichever way it ends
            before.add_done_callback(
                lambda _: self._output_pool.submit(self._write_output, asked, target)
            )
        return asked.written

    def on_state_thread(self, work: Callable[[], _T]) -> _T:
        """`work()` on the state write thread, after every state write asked for so far."""
        self._drain_state()
        return self._state_thread.submit(work).result()

    def publish(self) -> None:
        """Let the `queued` states held back until now be written, when the state write
        thread has nothing else to write."""
        self._release()

    def flush(self) -> None:
        """Wait until every write asked for so far is done, and durable."""
        self._outputs_idle.wait()
        self._drain_state()
        self.on_state_thread(self._sync_outputs)

    def close(self) -> None:
        """Finish the writes asked for and stop the write threads."""
        self.flush()
        for thread in (self._output_pool, self._state_thread, self._state_pool):
            thread.shutdown(wait=True)

    def _drain_state(self) -> None:
        """Wait until no state write waits, held ones too (a batch leaves what is over
        `STATE_BATCH` to the next). Whether more waits is asked on the state thread itself,
        between its batches."""
        self._release(now=True)
        while self._state_thread.submit(self._is_state_due).result():
            pass

    def _is_state_due(self) -> bool:
        with self._lock:
            return self._state_due

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
        """Write the state changes waiting, a batch at a time; published `queued` states
        only when nothing else waits. Outputs go first: their tasks wait for them, so each
        batch waits (a little) for them to be done."""
        self._outputs_idle.wait(STATE_YIELDS_S)
        with self._lock:
            urgent = (p for p in self._pending if p not in self._held and p not in self._spare)
            paths = list(itertools.islice(urgent, STATE_BATCH))
            paths = paths or list(itertools.islice(self._spare, STATE_BATCH))
            batch = {path: self._pending.pop(path) for path in paths}
            for path in paths:
                self._spare.pop(path, None)
            more = len(self._pending) > len(self._held)  # urgent or spare ones left
            self._state_due = more
        if more:  # after this batch, and after any write asked for meanwhile
            self._state_thread.submit(self._write_pending)
        self._sync_outputs()  # before any note of this batch can say its output is there
        folders: set[Path] = set()

        def write(path: str) -> bool:
            try:
                return self._write_now(path, batch[path], folders)
            except Exception:  # a bug must not silently stop the notes' write-back
                log.exception("writing the state of %s failed", path)
                return False

        wrote = _each(self._state_pool, paths, write)  # one batch: no two for one note
        written = [path for path, ok in zip(paths, wrote, strict=True) if ok]
        try:
            sync_folders(folders)
        except OSError as exc:
            log.warning("could not sync the folders of %s: %s", ", ".join(written), exc)
        for path in written:
            self._on_written(path)

    def _sync_outputs(self) -> None:
        """Make the outputs written so far durable in their folders."""
        with self._lock:
            folders, self._unsynced = self._unsynced, set()
        try:
            sync_folders(folders)
        except OSError as exc:
            log.warning("could not sync the output folders %s: %s", sorted(map(str, folders)), exc)

    def _write_now(self, path: str, pending: _Pending, folders: set[Path]) -> bool:
        """Write the changes into the note; True when its file changed."""
        edit = functools.partial(set_callout, callout=pending.callout)
        try:
            outcome = self.writer.update(
                path,
                pending.changes,
                self.seen.get(path),
                body_edit=edit if pending.callout_set else None,
                sync_later=folders,
            )
        except (VaultBmadError, OSError) as exc:
            log.warning("could not write the state of %s: %s", path, exc)
            return False
        self.seen[path] = outcome.text
        if outcome.restored:
            log.info("%s: an old copy of the note was saved over it; its state is put back", path)
        elif "status" in outcome.kept and owned_values(outcome.text)["status"] == "todo":
            self._on_rerun(path)  # set back to todo while vault-bmad had it: run it again
        elif outcome.kept:
            log.info("%s: kept the user's own %s", path, ", ".join(outcome.kept))
        return outcome.written

    def _write_output(self, asked: _OutputAsked, target: str | None) -> None:
        """Write one output note; its future ends once the note is on disk under its name."""
        if asked.written.set_running_or_notify_cancel():
            folders: set[Path] = set()
            try:
                written = self.writer.write_output(
                    asked.path, asked.body, asked.task_path, asked.keys, sync_later=folders
                )
            except Exception as exc:  # the engine sees it, and fails the task
                asked.written.set_exception(exc)
            else:
                with self._lock:  # before its task can ask for its `done` state
                    self._unsynced |= folders
                self._on_written(written)
                asked.written.set_result(written)
        with self._lock:
            if self._last_output.get(target) is asked.written:
                del self._last_output[target]
            self._outputs_waiting -= 1
            if not self._outputs_waiting:
                self._outputs_idle.set()


def _each(pool: ThreadPoolExecutor, items: list[_T], write: Callable[[_T], _R]) -> list[_R]:
    """`write` each item, several at once on `pool` (their fsyncs overlap; no two may touch
    one note)."""
    if len(items) < 2:
        return [write(item) for item in items]
    return list(pool.map(write, items))


def _target(asked: _OutputAsked) -> str | None:
    """The note an output is meant for (None when it names none, or no valid one)."""
    try:
        return output_note_path(asked.path) if asked.path else None
    except VaultBmadError:
        return None
