"""What the dashboard reads straight from the vault: a note's text and the report notes.

Read-only, and confined to the vault: a path that would leave it, or that names a hidden
file (`.vault-bmad/`, `.obsidian/`), is refused as if it did not exist. Report notes are
parsed once per change of their file (size and mtime), so listing them stays cheap.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from vault_bmad.errors import VaultPathError
from vault_bmad.metrics.report import REPORTS_FOLDER
from vault_bmad.vault.index import NOTE_SUFFIX, is_ignored
from vault_bmad.vault.notes import MAX_NOTE_BYTES, decode_note
from vault_bmad.vault.paths import normalize_vault_path, resolve_in_vault

MAX_SHOWN_BYTES = 2 * 1024 * 1024  # a note's text shown in a page, at most


@dataclass(frozen=True)
class NoteText:
    path: str  # vault-relative
    text: str
    truncated: bool


@dataclass(frozen=True)
class ReportEntry:
    path: str  # vault-relative
    name: str
    period_start: str | None
    period_end: str | None
    bottlenecks: int | None
    modified: float  # epoch seconds


def obsidian_url(vault: Path, rel_path: str) -> str:
    """obsidian://open?vault=<vault folder name>&file=<path without .md>, both URL-encoded."""
    file = rel_path[: -len(NOTE_SUFFIX)] if rel_path.lower().endswith(NOTE_SUFFIX) else rel_path
    return f"obsidian://open?vault={quote(vault.name, safe='')}&file={quote(file, safe='')}"


def note_path(vault: Path, rel_path: str) -> Path | None:
    """The file of a visible Markdown note in the vault, or None."""
    try:
        rel = normalize_vault_path(rel_path)
        if is_ignored(rel) or not rel.lower().endswith(NOTE_SUFFIX):
            return None
        path = resolve_in_vault(vault, rel)
    except VaultPathError:
        return None
    return path if path.is_file() else None


def read_note(vault: Path, rel_path: str) -> NoteText | None:
    """A note's text as it is on disk (up to MAX_SHOWN_BYTES), or None if there is none."""
    path = note_path(vault, rel_path)
    if path is None:
        return None
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SHOWN_BYTES + 1)
    except OSError:
        return None
    truncated = len(data) > MAX_SHOWN_BYTES
    text = data[:MAX_SHOWN_BYTES].decode("utf-8", errors="replace")
    return NoteText(normalize_vault_path(rel_path), text, truncated)


class ReportShelf:
    """The report notes under `Reports/`, newest first; safe across threads."""

    def __init__(self, vault: Path, folder: str = REPORTS_FOLDER) -> None:
        self.vault = vault
        self.folder = folder
        self._seen: dict[str, tuple[tuple[int, int], ReportEntry | None]] = {}
        self._lock = threading.Lock()

    def reports(self) -> list[ReportEntry]:
        root = self.vault / self.folder
        found: list[ReportEntry] = []
        seen: dict[str, tuple[tuple[int, int], ReportEntry | None]] = {}
        for path in _markdown_files(root):
            rel = path.relative_to(self.vault).as_posix()
            try:
                stat = path.stat()
            except OSError:
                continue
            version = (stat.st_size, stat.st_mtime_ns)
            with self._lock:
                known = self._seen.get(rel)
            entry = known[1] if known and known[0] == version else _read_report(path, rel, stat)
            seen[rel] = (version, entry)
            if entry is not None:
                found.append(entry)
        with self._lock:
            self._seen = seen
        return sorted(found, key=lambda r: (r.period_start or "", r.modified, r.path), reverse=True)


def _markdown_files(root: Path) -> list[Path]:
    files = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        files += [
            Path(folder) / name
            for name in names
            if name.lower().endswith(NOTE_SUFFIX) and not name.startswith(".")
        ]
    return files


def _read_report(path: Path, rel: str, stat: os.stat_result) -> ReportEntry | None:
    """The note as a report entry when its frontmatter says `type: report`."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_NOTE_BYTES + 1)
    except OSError:
        return None
    note = decode_note(rel, data[:MAX_NOTE_BYTES], size=stat.st_size)
    if note.type != "report":
        return None
    count = note.frontmatter.get("bottlenecks")
    return ReportEntry(
        path=rel,
        name=PurePosixPath(rel).stem,
        period_start=_text(note.frontmatter.get("period_start")),
        period_end=_text(note.frontmatter.get("period_end")),
        bottlenecks=count if isinstance(count, int) and not isinstance(count, bool) else None,
        modified=stat.st_mtime,
    )


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)
