"""From raw file-system events to a minimal batch of vault changes; pure, no I/O.

`ChangeDebouncer` takes events as a watcher sees them (created, modified, deleted,
moved; absolute paths under the vault or vault-relative ones) and, once the vault has
been quiet for `quiet_s` or the oldest pending event is `max_delay_s` old, hands out
the net effect: each note once, as "changed", "deleted" or "moved". An editor's burst
of saves collapses to one change; a file created and deleted in the same batch
vanishes; a temporary file renamed onto a note is a change of that note. Hidden paths
(`.obsidian/`, `.trash/`, `.vault-bmad/`, dot-files) and editors' scratch files are
not vault content, so a move from one of them is a change and a move into one is a
delete. Folder creates and moves must be fed as one event per file inside them (the
watcher walks the folder); a duplicate per-file move is ignored.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

from vault_bmad.errors import VaultPathError
from vault_bmad.vault.index import is_ignored
from vault_bmad.vault.paths import normalize_vault_path

__all__ = [
    "ChangeDebouncer",
    "ChangeKind",
    "EventKind",
    "FileEvent",
    "VaultChange",
    "is_conflict_copy",
    "is_scratch_file",
]

ChangeKind = Literal["changed", "deleted", "moved"]
EventKind = Literal["created", "modified", "deleted", "moved"]

_SCRATCH_SUFFIXES = (
    "~",  # vim, emacs and gedit backups: "Note.md~"
    ".tmp",
    ".temp",
    ".swp",
    ".swo",
    ".swx",
    ".part",
    ".crdownload",
    ".kate-swp",
)
_VIM_WRITE_PROBE = "4913"  # vim creates and deletes this to test that a folder is writable

# A parenthesised "conflict"/"conflicted copy" marker at the end of the name, followed by
# nothing, "copy", a date or a device: Obsidian Sync, Dropbox (also "(Case Conflict)"),
# Nextcloud/ownCloud "(conflicted copy 2026-11-25 100000)", Seafile "(SFConflict ...)".
_PAREN_CONFLICT = re.compile(
    r"\((?:[^()]*?)\b(?:sf)?conflict(?:ed)?(?: copy)?(?P<tail>[ _-][^()]*?(?:\(\d+\))?)?\)$",
    re.IGNORECASE,
)
_NAME_CONFLICT = re.compile(
    r"(?:\.sync-conflict-\d{8}-\d{6}(?:-[a-z0-9]+)?"  # Syncthing
    r"|_conflict-\d{8}-\d{6}"  # older Nextcloud/ownCloud
    r"|(?-i:-(?:DESKTOP|LAPTOP)-[A-Z0-9]{7}))$"  # OneDrive adds a default Windows host name
    r"|\bconflicted copy\b",  # Google Drive, Dropbox, ownCloud in any position
    re.IGNORECASE,
)


@dataclass(frozen=True)
class VaultChange:
    """One net change to a vault file, with vault-relative "/" paths.

    "changed": created or edited; re-read `path`. "deleted": gone; `path` may name a
    folder, meaning everything under it. "moved": `old_path` is gone and `path` holds
    its content, possibly edited too; re-read `path`.
    """

    kind: ChangeKind
    path: str
    old_path: str | None = None


@dataclass(frozen=True)
class FileEvent:
    """A raw file-system event; `dest_path` only for "moved"."""

    kind: EventKind
    path: str
    dest_path: str | None = None
    is_directory: bool = False


def is_conflict_copy(rel_path: str) -> bool:
    """Whether a file name is a sync tool's conflict copy, such as
    "Note (conflict 2026-11-25 10.00.00).md", "Note (Alice's conflicted copy 2026-11-25).md"
    or "Note.sync-conflict-20261125-100000-ABCDEF7.md". A plain "Note 2.md" or
    "Note (2).md" is not: people and vault-bmad itself name notes like that.
    """
    stem = PurePosixPath(rel_path).stem
    match = _PAREN_CONFLICT.search(stem)
    if match and (not match["tail"] or any(c.isdigit() for c in match["tail"])):
        return True
    return _NAME_CONFLICT.search(stem) is not None


def is_scratch_file(rel_path: str) -> bool:
    """An editor's or downloader's temporary file: "Note.md~", "Note.md.tmp", "#Note.md#"."""
    name = rel_path.rsplit("/", 1)[-1]
    return (
        name.endswith(_SCRATCH_SUFFIXES)
        or name.startswith("~$")  # office lock files
        or (len(name) > 1 and name.startswith("#") and name.endswith("#"))  # emacs autosave
        or name == _VIM_WRITE_PROBE
    )


@dataclass
class _Pending:
    """A file touched in this batch: where it was when the batch began (None: it did not
    exist then) and whether its content changed."""

    origin: str | None
    modified: bool


class ChangeDebouncer:
    """Coalesces raw events into batches of `VaultChange`; not thread-safe (lock around it)."""

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        quiet_s: float = 0.2,
        max_delay_s: float = 0.5,
        ignore: Callable[[str], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = os.path.abspath(root) if root is not None else None
        self._root_prefix = os.path.join(self.root, "") if self.root is not None else None
        self.quiet_s = quiet_s
        self.max_delay_s = max(max_delay_s, quiet_s)
        self._ignore = ignore
        self._clock = clock
        self._live: dict[str, _Pending] = {}  # current path -> pending state
        self._deleted: set[str] = set()  # paths that existed when the batch began
        self._first_at: float | None = None
        self._last_at = 0.0

    def add(self, event: FileEvent) -> bool:
        """Record one event; True if it concerned the vault's content."""
        source = self.relative(event.path)
        if event.kind == "moved":
            relevant = self._move(source, self.relative(event.dest_path or ""), event)
        elif source is None or not self.is_watched(source):
            relevant = False
        elif event.kind == "deleted":
            if event.is_directory:
                self._delete_folder(source)
            else:
                self._delete(source)
            relevant = True
        else:  # created or modified; folders arrive as the files inside them
            relevant = not event.is_directory
            if relevant:
                self._touch(source, created=event.kind == "created")
        if relevant:
            now = self._clock()
            if self._first_at is None:
                self._first_at = now
            self._last_at = now
        return relevant

    def add_all(self, events: Iterable[FileEvent]) -> None:
        for event in events:
            self.add(event)

    @property
    def pending(self) -> bool:
        return self._first_at is not None

    def due_in(self) -> float | None:
        """Seconds until the pending batch is due (0 if it is); None when nothing is pending."""
        if self._first_at is None:
            return None
        due = min(self._last_at + self.quiet_s, self._first_at + self.max_delay_s)
        return max(0.0, due - self._clock())

    def take(self) -> list[VaultChange]:
        """The pending batch now, due or not: deletes, then moves, then changes, by path."""
        deleted = [VaultChange("deleted", path) for path in sorted(self._deleted)]
        moved, changed = [], []
        for path, pending in sorted(self._live.items()):
            if pending.origin is not None and pending.origin != path:
                moved.append(VaultChange("moved", path, pending.origin))
            elif pending.origin is None or pending.modified:
                changed.append(VaultChange("changed", path))
        self._live.clear()
        self._deleted.clear()
        self._first_at = None
        return deleted + moved + changed

    def relative(self, path: str) -> str | None:
        """The vault-relative form of an absolute or relative path; None if outside."""
        if not path:
            return None
        if os.path.isabs(path):
            if self._root_prefix is None or not path.startswith(self._root_prefix):
                return None
            path = path[len(self._root_prefix) :]
        try:
            return normalize_vault_path(path)
        except VaultPathError:
            return None

    def is_watched(self, rel_path: str) -> bool:
        """Vault content: not hidden, not an editor's scratch file, not ignored by the owner."""
        return not (
            is_ignored(rel_path)
            or is_scratch_file(rel_path)
            or (self._ignore is not None and self._ignore(rel_path))
        )

    def _move(self, source: str | None, dest: str | None, event: FileEvent) -> bool:
        if event.is_directory:
            return False  # the caller feeds one move per file inside the folder
        source_watched = source is not None and self.is_watched(source)
        dest_watched = dest is not None and self.is_watched(dest)
        if source is not None and source_watched and not dest_watched:
            self._delete(source)  # into .trash/, a scratch name or out of the vault
        elif dest is not None and dest_watched and not source_watched:
            self._touch(dest, created=False)  # a temporary file saved over the note
        elif source is not None and dest is not None and source_watched:
            self._rename(source, dest)
        return source_watched or dest_watched

    def _rename(self, source: str, dest: str) -> None:
        replaced = self._live.get(dest)
        if source not in self._live and replaced is not None and replaced.origin == source:
            return  # the same move again: once from a folder walk, once from the OS
        moving = self._live.pop(source, None) or _Pending(origin=source, modified=False)
        replaced = self._live.pop(dest, None)
        if replaced is not None and replaced.origin not in (None, dest):
            self._deleted.add(replaced.origin)  # overwritten by the move: its content is gone
        self._deleted.discard(dest)
        self._live[dest] = moving

    def _touch(self, path: str, *, created: bool) -> None:
        pending = self._live.get(path)
        if pending is not None:
            pending.modified = True
        elif path in self._deleted:  # deleted then written again: an edit
            self._deleted.discard(path)
            self._live[path] = _Pending(origin=path, modified=True)
        else:
            self._live[path] = _Pending(origin=None if created else path, modified=True)

    def _delete(self, path: str) -> None:
        pending = self._live.pop(path, None)
        if pending is None:
            self._deleted.add(path)
        elif pending.origin is not None:
            self._deleted.add(pending.origin)
        # else: created in this batch, so nobody needs to hear of it

    def _delete_folder(self, folder: str) -> None:
        prefix = folder + "/"
        for path in [p for p in self._live if p.startswith(prefix)]:
            self._delete(path)
        self._deleted.add(folder)
