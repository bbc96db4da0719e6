"""The vault watcher: watchdog events in, debounced batches of `VaultChange` out.

A watchdog Observer feeds every event under the vault into a `ChangeDebouncer`; one
small thread hands each batch to `on_changes` once the vault has been quiet for
`debounce_s`, or at the latest `max_delay_s` after the batch's first event, so a save
reaches the service well within a second even while an editor keeps saving. Folder
creates and moves are walked here and fed as one event per file; watchdog's own
synthetic sub-events are skipped so nothing is reported twice. Before a "changed" is
reported, the file's text goes to `is_own_write` (the service passes
`NoteWriter.wrote_last`): the service's own write-backs are dropped, so they never loop.

The flusher also looks at the vault folder itself every `ROOT_CHECK_S`: when it is gone
or replaced (deleted and made again), watchdog's watch on it has ended, so `problem`
says so; once a folder is back at that path it is watched again and handed on whole,
as a change of the vault folder (path "") and of every file in it.

    watcher = VaultWatcher(root, on_changes, debounce_s=settings.debounce_ms / 1000,
                           is_own_write=writer.wrote_last)
    with watcher:
        ...

`apply_to_index` brings a `VaultIndex` up to date with a batch, one path at a time.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from vault_bmad.errors import ConfigError, VaultBmadError
from vault_bmad.vault.changes import ChangeDebouncer, FileEvent, VaultChange
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.notes import MAX_NOTE_BYTES, Note

__all__ = ["ChangesCallback", "OwnWriteCheck", "VaultWatcher", "apply_to_index"]

logger = logging.getLogger(__name__)

# watchdog's inotify observer warns when a folder created inside a new folder (an output's
# `Outputs/Tasks/...`) is watched a second time; it keeps one watch, so nothing is lost.
warnings.filterwarnings(
    "ignore", message="Callback with id .* already exists for watch", category=RuntimeWarning
)

ROOT_CHECK_S = 0.5  # how often the flusher looks at the vault folder itself
ChangesCallback = Callable[[list[VaultChange]], None]
OwnWriteCheck = Callable[[str, str], bool]  # (vault-relative path, file text) -> written by us

_WATCHED_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]


class VaultWatcher:
    """Watches the vault at `root` and calls `on_changes` with each batch, from its own thread.

    `ignore(rel_path)` names more paths to skip, beyond hidden ones and editors' scratch
    files. `on_changes` runs on one thread, one batch at a time; an exception from it is
    logged and the watcher goes on. `start` and `stop` may be called more than once.
    """

    def __init__(
        self,
        root: Path,
        on_changes: ChangesCallback,
        *,
        debounce_s: float = 0.2,
        max_delay_s: float = 0.5,
        ignore: Callable[[str], bool] | None = None,
        is_own_write: OwnWriteCheck | None = None,
    ) -> None:
        self.root = Path(os.path.abspath(root))
        self._on_changes = on_changes
        self._is_own_write = is_own_write
        self._debouncer = ChangeDebouncer(
            self.root, quiet_s=debounce_s, max_delay_s=max_delay_s, ignore=ignore
        )
        self._wakeup = threading.Condition()
        self._observer: BaseObserver | None = None
        self._flusher: threading.Thread | None = None
        self._stopping = False
        self._root_id: tuple[int, int] | None = None  # (device, inode) of the folder watched
        self._problem: str | None = None

    @property
    def running(self) -> bool:
        return self._observer is not None

    @property
    def problem(self) -> str | None:
        """Why the vault is not being watched now (its folder is gone), or None."""
        return self._problem

    def start(self) -> None:
        """Begin watching; raises ConfigError if the vault folder is missing."""
        with self._wakeup:
            if self._observer is not None:
                return
            if not self.root.is_dir():
                raise ConfigError(f"vault folder not found: {self.root}")
            self._debouncer.take()  # anything left from an earlier run is stale
            self._stopping = False
            observer = self._watch_root()
            flusher = threading.Thread(target=self._flush_loop, name="vault-watcher", daemon=True)
            flusher.start()
            self._observer, self._flusher = observer, flusher

    def _watch_root(self) -> BaseObserver:
        """A started observer on the vault folder, whose identity it notes."""
        self._root_id = _folder_id(self.root)
        # A folder made inside the vault (Outputs/<task>/) can be added to inotify twice, by
        # its creation event and by the walk of its parent; watchdog warns, and the second
        # add is harmless (it replaces the first), so the warning is noise.
        warnings.filterwarnings(
            "ignore", "Callback with id .* already exists for watch", RuntimeWarning
        )
        observer = Observer()
        observer.schedule(
            _Handler(self._receive),
            str(self.root),
            recursive=True,
            event_filter=_WATCHED_EVENTS,
        )
        try:
            observer.start()
        except OSError as error:  # e.g. the inotify watch limit
            _stop_observer(observer, timeout=1.0)
            raise VaultBmadError(f"cannot watch {self.root}: {error}") from error
        return observer

    def stop(self, timeout: float = 2.0) -> None:
        """Stop watching and join the threads; changes not yet delivered are dropped."""
        with self._wakeup:
            observer, flusher = self._observer, self._flusher
            self._observer = self._flusher = None
            self._stopping = True
            self._wakeup.notify_all()
        if observer is not None:
            _stop_observer(observer, timeout)
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join(timeout)

    def __enter__(self) -> VaultWatcher:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def _receive(self, event: FileSystemEvent) -> None:
        """Called on watchdog's thread for every event under the vault."""
        if event.is_synthetic:
            return  # sub-events of a folder move or create: walked here instead
        events = list(self._translate(event))
        with self._wakeup:
            was_pending = self._debouncer.pending
            self._debouncer.add_all(events)
            if not was_pending and self._debouncer.pending:
                self._wakeup.notify()  # later events only postpone the due time

    def _translate(self, event: FileSystemEvent) -> Iterator[FileEvent]:
        source, dest = os.fsdecode(event.src_path), os.fsdecode(event.dest_path)
        if isinstance(event, DirMovedEvent):
            for path in _files_under(dest):
                yield FileEvent("moved", os.path.join(source, os.path.relpath(path, dest)), path)
        elif isinstance(event, DirCreatedEvent):
            for path in _files_under(source):
                yield FileEvent("created", path)
        elif isinstance(event, DirDeletedEvent):
            yield FileEvent("deleted", source, is_directory=True)
        elif isinstance(event, FileMovedEvent):
            yield FileEvent("moved", source, dest)  # an empty side means outside the watch
        elif isinstance(event, FileCreatedEvent):
            yield FileEvent("created", source)
        elif isinstance(event, FileDeletedEvent):
            yield FileEvent("deleted", source)
        elif isinstance(event, FileModifiedEvent | FileClosedEvent):
            yield FileEvent("modified", source)

    def _flush_loop(self) -> None:
        next_check = 0.0
        while True:
            with self._wakeup:
                while not self._stopping:
                    wait = self._debouncer.due_in()
                    if wait == 0.0 or time.monotonic() >= next_check:
                        break
                    self._wakeup.wait(ROOT_CHECK_S if wait is None else min(wait, ROOT_CHECK_S))
                if self._stopping:
                    return
                batch = self._debouncer.take() if self._debouncer.due_in() == 0.0 else []
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + ROOT_CHECK_S
                batch += self._check_root()
            if batch:
                self._deliver(batch)

    def _check_root(self) -> list[VaultChange]:
        """Notice the vault folder gone or replaced; watch it again once it is back, and
        return the whole of it then as changes (on the flusher thread)."""
        observer = self._observer
        if observer is None:
            return []
        alive = all(emitter.is_alive() for emitter in observer.emitters)
        # Once gone, the stopped observer has no emitters (so `alive`), and the folder made
        # again may get the old inode: only watching it again ends the problem.
        if self._problem is None and alive and _folder_id(self.root) == self._root_id:
            return []
        if self._problem is None:
            self._problem = f"the vault folder {self.root} is gone; it is watched again once back"
            logger.warning("%s", self._problem)
            _stop_observer(observer, timeout=1.0)
        if _folder_id(self.root) is None:
            return []
        with self._wakeup:
            if self._stopping:
                return []
            try:
                self._observer = self._watch_root()
            except VaultBmadError as error:
                self._problem = (
                    f"the vault folder {self.root} is back but cannot be watched: {error}"
                )
                return []
        logger.warning("the vault folder %s is back and watched again", self.root)
        self._problem = None
        rel_paths = (os.path.relpath(path, self.root) for path in _files_under(str(self.root)))
        return [
            VaultChange("changed", ""),
            *(VaultChange("changed", rel.replace(os.sep, "/")) for rel in sorted(rel_paths)),
        ]

    def _deliver(self, batch: list[VaultChange]) -> None:
        kept = [change for change in batch if not self._is_own(change)]
        if not kept:
            return
        try:
            self._on_changes(kept)
        except Exception:
            logger.exception("handling %d vault changes failed", len(kept))

    def _is_own(self, change: VaultChange) -> bool:
        """Whether the file now holds exactly what the service itself last wrote there."""
        if self._is_own_write is None or change.kind != "changed":
            return False
        text = _read_text(self.root / change.path)
        if text is None:
            return False
        try:
            return self._is_own_write(change.path, text)
        except Exception:
            logger.exception("own-write check of %s failed; reporting the change", change.path)
            return False


def apply_to_index(index: VaultIndex, changes: Sequence[VaultChange]) -> list[Note]:
    """Follow a batch in the index, one path at a time; returns the notes (re)read.

    Every removal comes before any update, so a batch holding a swap ("A" moved to "B"
    and "B" to "A") leaves both notes in place.
    """
    for change in changes:
        if change.kind == "deleted":
            index.remove(change.path)
        elif change.kind == "moved" and change.old_path is not None:
            index.remove(change.old_path)
    notes = []
    for change in changes:
        if change.kind != "deleted":
            note = index.update(change.path)
            if note is not None:
                notes.append(note)
    return notes


class _Handler(FileSystemEventHandler):
    def __init__(self, receive: Callable[[FileSystemEvent], None]) -> None:
        self._receive = receive

    def on_any_event(self, event: FileSystemEvent) -> None:
        self._receive(event)


def _files_under(folder: str) -> Iterator[str]:
    """Every file below `folder`, skipping hidden folders; nothing if it is gone."""
    for parent, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in files:
            yield os.path.join(parent, name)


def _read_text(path: Path) -> str | None:
    """A note's exact text; None if it is gone, too large for a note or not UTF-8."""
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size > MAX_NOTE_BYTES:
                return None
            return handle.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _folder_id(folder: Path) -> tuple[int, int] | None:
    """(device, inode) of a folder, telling one made again at the same path; None if gone."""
    try:
        status = os.stat(folder)
    except OSError:
        return None
    return (status.st_dev, status.st_ino) if stat.S_ISDIR(status.st_mode) else None


def _stop_observer(observer: BaseObserver, timeout: float) -> None:
    observer.stop()
    if observer.is_alive():
        observer.join(timeout)
