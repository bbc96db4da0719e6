"""The whole vault in memory: every note read, every file known, links resolvable.

The index loads once, then follows changes one path at a time (`update`, `remove`,
`move`), which is what the watcher calls; a path may name a file or a folder.
Notes are re-read only when their modification time or size changed; a note's
frontmatter is parsed at once, its body syntax on first use (see `notes.Note`).
Hidden files and folders (`.obsidian/`, `.trash/`, `.vault-bmad/`, `.git/`) are
skipped, and so are symlinked folders and symlinks that lead out of the vault.
"""

from __future__ import annotations

import gc
import os
import posixpath
import stat as stat_kind
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from vault_bmad.errors import ConfigError, VaultPathError, is_utf8
from vault_bmad.vault.links import LinkResolver
from vault_bmad.vault.notes import HEAD_BYTES, MAX_NOTE_BYTES, Note, decode_note, json_safe
from vault_bmad.vault.syntax import Link

NOTE_SUFFIX = ".md"


def is_ignored(rel_path: str) -> bool:
    """Obsidian skips hidden files and folders: `.obsidian/`, `.trash/`, `.vault-bmad/`, `.git/`."""
    return any(part.startswith(".") for part in rel_path.split("/"))


def clean_path(rel_path: str) -> str:
    """A vault-relative path in normal form (`/`, no `./`); raise if it leaves the vault."""
    path = posixpath.normpath(rel_path.replace(os.sep, "/"))
    if path.startswith("/") or path == ".." or path.startswith("../"):
        raise VaultPathError(f"{rel_path!r} is not a path inside the vault")
    return "" if path == "." else path


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector during a bulk load.

    A scan builds tens of thousands of acyclic objects that all stay alive, so each
    collection would walk the growing index again for nothing (about 12% of a 10,000
    note load). Reference counting still frees garbage meanwhile; the collector's
    state is restored afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class VaultIndex:
    """Notes and files of one vault, keyed by vault-relative path with `/`."""

    def __init__(self, root: Path, max_note_bytes: int = MAX_NOTE_BYTES) -> None:
        self.given_root = Path(os.path.abspath(root))
        self.root = root.resolve()
        self.max_note_bytes = max_note_bytes
        self.notes: dict[str, Note] = {}
        self.files: set[str] = set()
        self.resolver = LinkResolver()
        self._stamps: dict[str, tuple[int, int]] = {}
        self._lock = threading.RLock()

    @classmethod
    def load(cls, root: Path, max_note_bytes: int = MAX_NOTE_BYTES) -> VaultIndex:
        index = cls(root, max_note_bytes)
        index.scan()
        return index

    def scan(self) -> None:
        """Bring the whole vault up to date: read new and changed files, drop vanished ones."""
        if not self.root.is_dir():
            raise ConfigError(f"vault folder not found: {self.given_root}")
        with self._lock, _cycle_collector_paused():
            self._sync_folder("")

    def update(self, rel_path: str) -> Note | None:
        """Follow a file or folder that was added or changed; a vanished one is removed.
        "" is the vault folder itself: all of it is brought up to date, if it is there.

        Returns the note at `rel_path`, or None for folders, other files and ignored paths.
        """
        rel_path = clean_path(rel_path)
        if not rel_path:
            if self.root.is_dir():
                with self._lock, _cycle_collector_paused():
                    self._sync_folder("")
            return None
        if is_ignored(rel_path):
            return None
        with self._lock:
            status = self._stat(rel_path)
            if status is None:
                self.remove(rel_path)
                return None
            if stat_kind.S_ISDIR(status.st_mode):
                if rel_path in self.files:
                    self._forget(rel_path)  # a file replaced by a folder of the same name
                self._sync_folder(rel_path + "/")
                return None
            if stat_kind.S_ISREG(status.st_mode):
                self._refresh(rel_path, status)
            return self.notes.get(rel_path)

    def learn(self, rel_path: str, data: bytes, stamp: tuple[int, int]) -> None:
        """Take a note just written (its bytes and its (mtime_ns, size) stamp) without
        reading the file back; a later change to the file is seen by its stamp."""
        rel_path = clean_path(rel_path)
        if not rel_path or is_ignored(rel_path):
            return
        with self._lock:
            self._know(rel_path, stamp)
            if rel_path.endswith(NOTE_SUFFIX):
                self.notes[rel_path] = decode_note(rel_path, data, self.max_note_bytes)

    def remove(self, rel_path: str) -> None:
        """Forget a file, or every file under a folder."""
        rel_path = clean_path(rel_path)
        if not rel_path:
            return  # the vault itself: `scan` notices what is gone
        with self._lock:
            if rel_path in self.files:
                self._forget(rel_path)
                return
            prefix = rel_path + "/"
            for path in [p for p in self.files if p.startswith(prefix)]:
                self._forget(path)

    def move(self, old_path: str, new_path: str) -> Note | None:
        """Follow a renamed file or folder."""
        with self._lock:
            self.remove(old_path)
            return self.update(new_path)

    def get(self, rel_path: str) -> Note | None:
        return self.notes.get(rel_path)

    def resolve(self, link: Link | str, source: str) -> str | None:
        """The vault path a link (or bare link path) from `source` points to, or None."""
        target = link.target if isinstance(link, Link) else link
        with self._lock:
            return self.resolver.resolve(target, source)

    def resolved_links(self, rel_path: str) -> list[tuple[Link, str | None]]:
        """Each link of a note with the path it points to now (None when unresolved)."""
        with self._lock:
            note = self.notes.get(rel_path)
            if note is None:
                return []
            return [(link, self.resolver.resolve(link.target, rel_path)) for link in note.links]

    def read_text(self, rel_path: str) -> str:
        """A file's text, for files the index does not parse (YAML, TOML)."""
        path = self.root / clean_path(rel_path)
        return path.read_text(encoding="utf-8-sig", errors="replace")

    def relative(self, path: str | os.PathLike[str]) -> str | None:
        """The vault-relative path of an absolute path, or None when outside or ignored."""
        absolute = Path(os.path.abspath(path))
        for root in (self.root, self.given_root):
            if absolute.is_relative_to(root):
                rel_path = absolute.relative_to(root).as_posix()
                return None if rel_path == "." or is_ignored(rel_path) else rel_path
        return None

    def as_dict(self) -> dict[str, list[dict[str, Any]]]:
        """Every note, sorted by path, as JSON-safe data with its links resolved.

        Parses every body not parsed yet, a bulk load of its own: the collector pauses."""
        with self._lock, _cycle_collector_paused():
            return {"notes": [self._note_dict(path) for path in sorted(self.notes)]}

    def _note_dict(self, rel_path: str) -> dict[str, Any]:
        note = self.notes[rel_path]
        return {
            "path": note.path,
            "type": note.type,
            "tags": list(note.tags),
            "aliases": list(note.aliases),
            "frontmatter": json_safe(note.frontmatter),
            "links": [
                {"raw": link.raw, "target": target}
                for link, target in self.resolved_links(rel_path)
            ],
            "error": note.error,
        }

    def _forget(self, rel_path: str) -> None:
        self.files.discard(rel_path)
        self.resolver.remove(rel_path)
        self.notes.pop(rel_path, None)
        self._stamps.pop(rel_path, None)

    def _refresh(self, rel_path: str, status: os.stat_result) -> None:
        stamp = (status.st_mtime_ns, status.st_size)
        if self._stamps.get(rel_path) == stamp:
            return
        self._know(rel_path, stamp)
        if rel_path.endswith(NOTE_SUFFIX):
            self.notes[rel_path] = self._read_note(rel_path, status.st_size)

    def _know(self, rel_path: str, stamp: tuple[int, int]) -> None:
        """Record a file (and its stamp) as there."""
        if rel_path not in self.files:
            self.files.add(rel_path)
            self.resolver.add(rel_path)
        self._stamps[rel_path] = stamp

    def _read_note(self, rel_path: str, size: int) -> Note:
        if not rel_path.isascii() and not is_utf8(rel_path):
            return Note(rel_path, error="the file name is not UTF-8 text: rename the file")
        try:
            with open(f"{self.root}/{rel_path}", "rb", buffering=0) as handle:
                if size > self.max_note_bytes:  # only its start, for the frontmatter's `type`
                    head = handle.read(HEAD_BYTES)
                    return decode_note(rel_path, head, self.max_note_bytes, size=size)
                data = handle.read(size + 1)  # one more byte tells whether it grew since stat
                if len(data) > size:
                    size = max(os.fstat(handle.fileno()).st_size, len(data))
                    if size <= self.max_note_bytes:
                        data += handle.read()
        except OSError as exc:
            return Note(rel_path, error=f"cannot read note: {exc.strerror or exc}")
        return decode_note(rel_path, data, self.max_note_bytes, size=max(size, len(data)))

    def _sync_folder(self, prefix: str) -> None:
        """Refresh every file under `prefix` ("" for the vault) and drop the vanished ones."""
        seen = set()
        for rel_path, status in self._walk(prefix):
            seen.add(rel_path)
            self._refresh(rel_path, status)
        for rel_path in [p for p in self.files if p.startswith(prefix) and p not in seen]:
            self._forget(rel_path)

    def _walk(self, prefix: str) -> Iterator[tuple[str, os.stat_result]]:
        folders = [prefix]
        while folders:
            folder = folders.pop()
            try:
                entries = list(os.scandir(os.path.join(self.root, folder)))
            except OSError:
                continue
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                rel_path = folder + entry.name
                try:
                    if entry.is_symlink() and not self._link_allowed(entry.path):
                        continue
                    if entry.is_dir():
                        folders.append(rel_path + "/")
                    elif entry.is_file():
                        yield rel_path, entry.stat()
                except OSError:
                    continue  # vanished while we looked

    def _stat(self, rel_path: str) -> os.stat_result | None:
        """The file's status, or None when it is gone or not to be followed."""
        path = os.path.join(self.root, rel_path)
        parent = os.path.dirname(rel_path)
        try:
            if parent and os.path.realpath(os.path.join(self.root, parent)) != os.path.join(
                self.root, parent
            ):
                return None  # under a symlinked folder, which a scan does not enter
            if os.path.islink(path) and not self._link_allowed(path):
                return None
            return os.stat(path)
        except OSError:
            return None

    def _link_allowed(self, path: str) -> bool:
        """A symlinked file inside the vault is followed; a linked folder may loop."""
        real = os.path.realpath(path)
        return Path(real).is_relative_to(self.root) and not os.path.isdir(real)
