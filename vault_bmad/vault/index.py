"""The whole vault in memory: every note parsed, every file known, links resolvable.

The index loads once, then follows changes one file at a time (`update`, `remove`,
`move`), which is what the watcher calls. Notes are re-read only when their
modification time or size changed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

from vault_bmad.vault.links import LinkResolver
from vault_bmad.vault.notes import MAX_NOTE_BYTES, Note, decode_note
from vault_bmad.vault.syntax import Link

NOTE_SUFFIX = ".md"


def is_ignored(rel_path: str) -> bool:
    """Obsidian skips hidden files and folders: `.obsidian/`, `.trash/`, `.vault-bmad/`, `.git/`."""
    return any(part.startswith(".") for part in rel_path.split("/"))


class VaultIndex:
    """Notes and files of one vault, keyed by vault-relative path with `/`."""

    def __init__(self, root: Path, max_note_bytes: int = MAX_NOTE_BYTES) -> None:
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
        """Read the whole vault."""
        with self._lock:
            for rel_path, stat in self._walk(self.root, ""):
                self._add(rel_path, stat)

    def update(self, rel_path: str) -> Note | None:
        """Follow a file that was added or changed; a vanished file is removed."""
        if is_ignored(rel_path):
            return None
        try:
            stat = (self.root / rel_path).stat()
        except OSError:
            self.remove(rel_path)
            return None
        with self._lock:
            if self._stamps.get(rel_path) == (stat.st_mtime_ns, stat.st_size):
                return self.notes.get(rel_path)
            self._add(rel_path, stat)
            return self.notes.get(rel_path)

    def remove(self, rel_path: str) -> None:
        with self._lock:
            if rel_path in self.files:
                self.files.discard(rel_path)
                self.resolver.remove(rel_path)
            self.notes.pop(rel_path, None)
            self._stamps.pop(rel_path, None)

    def move(self, old_path: str, new_path: str) -> Note | None:
        self.remove(old_path)
        return self.update(new_path)

    def get(self, rel_path: str) -> Note | None:
        return self.notes.get(rel_path)

    def resolve(self, link: Link | str, source: str) -> str | None:
        """The vault path a link (or bare link path) from `source` points to, or None."""
        target = link.target if isinstance(link, Link) else link
        with self._lock:
            return self.resolver.resolve(target, source)

    def notes_of_type(self, note_type: str) -> list[Note]:
        with self._lock:
            return sorted(
                (note for note in self.notes.values() if note.type == note_type),
                key=lambda note: note.path,
            )

    def read_text(self, rel_path: str) -> str:
        """A file's text, for files the index does not parse (YAML, TOML)."""
        return (self.root / rel_path).read_text(encoding="utf-8-sig", errors="replace")

    def relative(self, path: str | os.PathLike[str]) -> str | None:
        """The vault-relative path of an absolute path, or None when outside or ignored."""
        try:
            rel_path = Path(os.path.abspath(path)).relative_to(self.root).as_posix()
        except ValueError:
            return None
        return None if rel_path == "." or is_ignored(rel_path) else rel_path

    def _add(self, rel_path: str, stat: os.stat_result) -> None:
        if rel_path not in self.files:
            self.files.add(rel_path)
            self.resolver.add(rel_path)
        self._stamps[rel_path] = (stat.st_mtime_ns, stat.st_size)
        if rel_path.endswith(NOTE_SUFFIX):
            self.notes[rel_path] = self._read_note(rel_path, stat.st_size)

    def _read_note(self, rel_path: str, size: int) -> Note:
        path = self.root / rel_path
        try:
            with path.open("rb") as handle:
                data = handle.read(self.max_note_bytes + 1)
        except OSError as exc:
            return Note(rel_path, error=f"cannot read note: {exc.strerror or exc}")
        return decode_note(rel_path, data, self.max_note_bytes, size=max(size, len(data)))

    def _walk(self, folder: Path, prefix: str) -> Iterator[tuple[str, os.stat_result]]:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel_path = prefix + entry.name
            if entry.is_symlink() and (entry.is_dir() or not self._inside(entry.path)):
                continue  # a linked folder may loop; a linked file may lead out of the vault
            if entry.is_dir():
                yield from self._walk(Path(entry.path), rel_path + "/")
            elif entry.is_file():
                yield rel_path, entry.stat()

    def _inside(self, path: str) -> bool:
        return Path(os.path.realpath(path)).is_relative_to(self.root)
