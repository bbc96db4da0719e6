"""Edit-safe write-back: task state into task notes, results into output notes.

Every write is confined to the vault and atomic (a temporary file in the same folder,
fsync, os.replace, keeping the file's mode). What vault-bmad writes holds no control
character but tab and newline (`clean_text`): a model may answer NUL bytes, and a note
holding them is no longer text. A task note is edited only in the keys
the service owns, merged with whatever the user changed since the caller read it. An
output note never replaces a note the user wrote or edited; it goes beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

import yaml

from vault_bmad.errors import VaultPathError, WriteConflict
from vault_bmad.vault.callout import strip_callout
from vault_bmad.vault.frontmatter_edit import (
    raw_values,
    set_frontmatter_keys,
    split_note,
    yaml_value,
)
from vault_bmad.vault.leftovers import temporary_path
from vault_bmad.vault.notes import MAX_NOTE_BYTES, SAFE_YAML_LOADER, Note, json_safe, parse_note
from vault_bmad.vault.paths import normalize_vault_path, resolve_in_vault

__all__ = [
    "ANSWERS_KEY",
    "GENERATED_BY",
    "OWNED_TASK_KEYS",
    "NoteWriter",
    "WriteOutcome",
    "clean_text",
    "default_output_path",
    "is_stale_copy",
    "iso_time",
    "output_note_path",
    "output_path_problem",
    "owned_values",
    "read_note_text",
    "set_frontmatter_keys",
    "step_output_path",
    "sync_folders",
    "unwritable_reason",
    "user_content_sha",
    "wikilink",
]

OWNED_TASK_KEYS: tuple[str, ...] = (
    "status",
    "error",
    "started",
    "completed",
    "duration_ms",
    "agent_used",
    "attempts",
    "cache",
    "result",
    "truncated",
    "questions",
)
# The user's answers to `questions`: vault-bmad only moves them beside their questions, or
# clears those of a round that is over, when it writes new questions (see engine/asking.py).
ANSWERS_KEY = "answers"
_OWNED: dict[str, object] = dict.fromkeys(OWNED_TASK_KEYS)
GENERATED_BY = "vault-bmad"
_ANY_WRITE = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline
_MAX_RACES = 5  # re-reads when the note changes while it is being written
_MAX_SIBLINGS = 1000  # "PRD (2).md" ... before giving up


@dataclass(frozen=True)
class WriteOutcome:
    """What `NoteWriter.update` did to one task note."""

    path: str  # vault-relative
    written: bool  # False when the note already said all of it
    merged: bool  # the note had changed since read_text; changes went into the new text
    kept: tuple[str, ...]  # keys the user changed since read_text, left as the user set them
    text: str  # the note's text now: pass it as read_text to the next update
    restored: bool = False  # an old copy had been saved over the note; the keys were put back


def clean_text(text: str) -> str:
    """`text` with line breaks as newlines and no other control character but tab."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _clean(value: object) -> object:
    return clean_text(value) if isinstance(value, str) else value


def wikilink(rel_path: str) -> str:
    """The wikilink to a vault note: "Docs/PRD.md" -> "[[Docs/PRD]]"."""
    rel = normalize_vault_path(rel_path)
    return f"[[{rel[:-3] if rel.lower().endswith('.md') else rel}]]"


def iso_time(epoch_seconds: float) -> str:
    """An ISO 8601 local time with its UTC offset, to the second, for started/completed."""
    return datetime.fromtimestamp(epoch_seconds).astimezone().isoformat(timespec="seconds")


def default_output_path(source_task: str, folder: str) -> str:
    """Where a task without `output:` puts its result: its note's path under the
    `output_folder` setting, "Tasks/Plan.md" -> "Outputs/Tasks/Plan - result.md", so that
    no two tasks share one."""
    task = PurePosixPath(normalize_vault_path(source_task))
    return normalize_vault_path(f"{folder}/{task.parent}/{task.stem} - result.md")


def step_output_path(source_task: str, step: str, folder: str) -> str:
    """Where a workflow step that creates no note of its own puts its result: beside its
    run's, "Tasks/Kick off.md" -> "Outputs/Tasks/Kick off/<step id>.md"."""
    run = PurePosixPath(default_output_path(source_task, folder))
    return str(run.with_name(run.name.removesuffix(" - result.md")) / f"{step}.md")


def output_note_path(output: str) -> str:
    """The note an `output:` names, confined to the vault, ".md" added when it names no
    file type."""
    wanted = normalize_vault_path(output)
    return wanted if PurePosixPath(wanted).suffix else wanted + ".md"


def output_path_problem(rel_path: str) -> str | None:
    """Why an output may not go to `rel_path` (vault-relative, normalized), or None.

    Outputs are notes Obsidian shows: never in a hidden folder (`.obsidian`, `.git`,
    `.trash`, `.vault-bmad`), never a file that is not Markdown (a plugin's `main.js`,
    `vault-bmad.toml`)."""
    hidden = next((part for part in rel_path.split("/") if part.startswith(".")), None)
    if hidden is not None:
        return f"is hidden ({hidden}): vault-bmad writes only notes Obsidian shows"
    if PurePosixPath(rel_path).suffix.lower() != ".md":
        return "is not a Markdown note (.md)"
    return None


def unwritable_reason(path: Path) -> str | None:
    """Why vault-bmad may not change the note at `path` (inside the vault), or None.

    A note whose file or folder has no write permission is the user's to keep: vault-bmad
    respects the permission bits even where it could write anyway (as root)."""
    try:
        note, folder = path.stat(), path.parent.stat()
    except OSError:
        return None  # gone: the caller finds out
    if not note.st_mode & _ANY_WRITE or not os.access(path, os.W_OK):
        return "is read-only, so vault-bmad leaves it alone; make it writable to run it"
    if not folder.st_mode & _ANY_WRITE or not os.access(path.parent, os.W_OK | os.X_OK):
        return "is in a read-only folder, where vault-bmad cannot save its state"
    if note.st_size > MAX_NOTE_BYTES:
        return "is too big for vault-bmad to rewrite"
    return None


def user_content_sha(note: Note) -> str:
    """A hash of what the user wrote in a note: its body (but the questions' callout) and
    the frontmatter keys vault-bmad does not own. It stays the same across vault-bmad's own
    writes."""
    theirs = {k: v for k, v in note.frontmatter.items() if k not in OWNED_TASK_KEYS}
    text = json.dumps(json_safe(theirs), sort_keys=True, ensure_ascii=False)
    return _text_sha(text + "\x00" + strip_callout(note.body))


Stamp = tuple[int, int]  # a file's (st_mtime_ns, st_size), as the index keeps it
OnWritten = Callable[[str, bytes, Stamp], object]


class NoteWriter:
    """Writes task state and output notes into the vault at `root`; safe across threads.

    `on_written(rel_path, data, stamp)` hears of each file written, with the bytes now
    in it and its stamp (the index learns the note from them instead of re-reading it).
    Each write is fsynced, and so is its folder once the rename is done, unless the caller
    passes `sync_later`, a set that collects the folders for one `sync_folders` call after
    a batch of writes."""

    def __init__(self, root: Path, on_written: OnWritten | None = None) -> None:
        self.root = root
        self._on_written = on_written
        self._guard = threading.Lock()
        self._path_locks: dict[str, threading.Lock] = {}
        self._last_written: dict[str, str] = {}  # vault-relative path -> sha256 of text

    def update(
        self,
        rel_path: str,
        changes: Mapping[str, object | None],
        read_text: str | None,
        *,
        body_edit: Callable[[str], str] | None = None,
        sync_later: set[Path] | None = None,
    ) -> WriteOutcome:
        """Set the owned keys `changes` (None removes a key) in the task note `rel_path`,
        then apply `body_edit` (e.g. `callout.set_callout`) to the note's text.

        `read_text` is the note as the caller last saw it (as read, or the `text` of the
        previous outcome). If the file differs from it now, the changes are applied to
        the current text, except for keys the user changed since: those are kept. But when
        the file is an old copy of the note (`is_stale_copy`), every owned key is put back
        as read_text had it, with the changes. With read_text None every change is applied.
        Raises WriteConflict if the note is gone or may not be changed (`unwritable_reason`).
        """
        not_owned = sorted(set(changes) - {*OWNED_TASK_KEYS, ANSWERS_KEY})
        if not_owned:
            raise ValueError(f"write-back may only change {OWNED_TASK_KEYS}, not {not_owned}")
        rel = normalize_vault_path(rel_path)
        path = resolve_in_vault(self.root, rel)
        refused = unwritable_reason(path)
        if refused is not None:
            raise WriteConflict(f"{rel} {refused}")
        changes = {key: _clean(value) for key, value in changes.items()}
        with self._lock_for(rel):
            for _ in range(_MAX_RACES):
                current = _read_text(path, rel)
                if current is None:
                    raise WriteConflict(f"{rel} was deleted before vault-bmad could update it")
                merged = read_text is not None and current != read_text
                kept = _keys_changed_between(read_text, current, changes) if merged else ()
                restored = bool(kept) and is_stale_copy(read_text or "", current)
                if restored:
                    kept, applied = (), {**owned_values(read_text or ""), **changes}
                else:
                    applied = {key: value for key, value in changes.items() if key not in kept}
                new_text = set_frontmatter_keys(current, applied)
                if body_edit is not None:
                    new_text = body_edit(new_text)
                if new_text == current:
                    return WriteOutcome(rel, False, merged, kept, current, restored)
                if self._replace(path, rel, new_text, current, sync_later):
                    return WriteOutcome(rel, True, merged, kept, new_text, restored)
        raise WriteConflict(f"{rel} kept changing while vault-bmad was writing to it")

    def write_output(
        self,
        rel_path: str | None,
        body: str,
        source_task: str | None,
        extra_frontmatter: Mapping[str, object] | None = None,
        *,
        sync_later: set[Path] | None = None,
    ) -> str:
        """Write a task's output note and return the vault-relative path written.

        `rel_path` is the task's output, which reading the vault always sets (see
        `default_output_path`); `source_task` is the task note's path (None for a note of
        vault-bmad's own, such as a report).
        A note at that path that vault-bmad did not write for this same task, or whose
        body was edited since, is left alone: the output goes to "Name (2).md".
        """
        task_rel = normalize_vault_path(source_task) if source_task else None
        if not rel_path:
            raise ValueError(f"no output note given for {task_rel or 'a note of its own'}")
        wanted = output_note_path(rel_path)
        refused = output_path_problem(wanted)
        if refused is not None:
            raise VaultPathError(f"output {wanted} {refused}")
        body = clean_text(body)
        keys: dict[str, object | None] = {
            "source_task": wikilink(task_rel) if task_rel else None,
            "generated_by": GENERATED_BY,
            **{key: _clean(value) for key, value in (extra_frontmatter or {}).items()},
            "content_sha": _body_sha(body),
        }
        for candidate in _sibling_paths(wanted):
            path = resolve_in_vault(self.root, candidate)
            with self._lock_for(candidate):
                if unwritable_reason(path) is not None:
                    continue  # read-only, too big: not vault-bmad's to replace
                try:
                    existing = _read_text(path, candidate)
                except WriteConflict:
                    continue  # not UTF-8: not a note vault-bmad wrote
                if existing is not None and not _is_unedited_output(existing, keys):
                    continue
                new_text = _output_text(existing, keys, body)
                if new_text == existing:
                    return candidate
                path.parent.mkdir(parents=True, exist_ok=True)
                path = resolve_in_vault(self.root, candidate)  # the new folders are real
                if self._replace(path, candidate, new_text, existing, sync_later):
                    return candidate
        raise WriteConflict(f"no free name beside {wanted} for the output of {task_rel or wanted}")

    def wrote_last(self, rel_path: str, text_or_hash: str) -> bool:
        """Whether the last text this writer wrote to `rel_path` is this text (or sha256)."""
        rel = normalize_vault_path(rel_path)
        with self._guard:
            last = self._last_written.get(rel)
        return last is not None and last in (text_or_hash, _text_sha(text_or_hash))

    def _lock_for(self, rel: str) -> threading.Lock:
        with self._guard:
            return self._path_locks.setdefault(rel, threading.Lock())

    def _replace(
        self,
        path: Path,
        rel: str,
        text: str,
        expected: str | None,
        sync_later: set[Path] | None,
    ) -> bool:
        """Atomically put `text` at `path` if the file still holds `expected` (None: absent)."""
        temporary = temporary_path(path)
        data = text.encode("utf-8")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            try:
                unwritten = memoryview(data)
                while unwritten:
                    unwritten = unwritten[os.write(descriptor, unwritten) :]
                if expected is not None:
                    os.fchmod(descriptor, stat.S_IMODE(os.stat(path).st_mode))
                os.fsync(descriptor)
                written = os.fstat(descriptor)
            finally:
                os.close(descriptor)
            if _read_text(path, rel) != expected:
                temporary.unlink()
                return False
            with self._guard:  # before the replace, so a watcher event already matches
                previous = self._last_written.get(rel)
                self._last_written[rel] = hashlib.sha256(data).hexdigest()  # `_text_sha`
            try:
                os.replace(temporary, path)
            except OSError:
                with self._guard:
                    if previous is None:
                        self._last_written.pop(rel, None)
                    else:
                        self._last_written[rel] = previous
                raise
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        if self._on_written is not None:
            self._on_written(rel, data, (written.st_mtime_ns, written.st_size))
        if sync_later is None:
            _fsync_folder(path.parent)
        else:
            sync_later.add(path.parent)
        return True


def sync_folders(folders: Iterable[Path]) -> None:
    """Make the renames into each folder durable: the end of a batch of `sync_later` writes."""
    for folder in folders:
        _fsync_folder(folder)


def is_stale_copy(before: str, after: str) -> bool:
    """Whether `after` is an old copy of the note saved over `before` (an editor writing back
    the text it had open): what the user wrote is the same, and owned keys other than
    `status` went back too. A deliberate edit changes what the user wrote, or only `status`.
    """
    old, new = parse_note("", before), parse_note("", after)
    if old.error or new.error or user_content_sha(old) != user_content_sha(new):
        return False
    return bool(set(_keys_changed_between(before, after, _OWNED)) - {"status"})


def owned_values(text: str) -> dict[str, object | None]:
    """The value of each key vault-bmad owns in the note's frontmatter (None: absent)."""
    parts = split_note(text)
    try:
        data = yaml.load(parts.yaml, Loader=SAFE_YAML_LOADER) if parts is not None else None
    except yaml.YAMLError:
        data = None
    found = data if isinstance(data, dict) else {}
    return {key: found.get(key) for key in OWNED_TASK_KEYS}


def read_note_text(root: Path, rel_path: str) -> str | None:
    """A note's exact text, or None when it is gone; WriteConflict when it is not UTF-8."""
    rel = normalize_vault_path(rel_path)
    return _read_text(resolve_in_vault(root, rel), rel)


def _read_text(path: Path, rel: str) -> str | None:
    """The file's exact text (BOM and line breaks kept), or None if there is no file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise WriteConflict(f"{rel} is not UTF-8 text; vault-bmad will not rewrite it") from error


def _keys_changed_between(
    before: str | None, after: str, keys: Mapping[str, object]
) -> tuple[str, ...]:
    old, new = _key_values(before or "", keys), _key_values(after, keys)
    return tuple(key for key in keys if old[key] != new[key])


def _key_values(text: str, keys: Mapping[str, object]) -> dict[str, object]:
    """Each key's value in the frontmatter (None if absent); as written if it won't load."""
    parts = split_note(text)
    if parts is None:
        return dict.fromkeys(keys)
    try:
        data = yaml.load(parts.yaml, Loader=SAFE_YAML_LOADER)  # a safe loader
    except yaml.YAMLError:
        data = False  # not a mapping: compare the values as written
    if data is None or isinstance(data, dict):
        found = data or {}
        return {key: ("loaded", found[key]) if key in found else None for key in keys}
    written = raw_values(parts.yaml)
    return {key: ("written", written[key]) if key in written else None for key in keys}


def _is_unedited_output(text: str, keys: Mapping[str, object | None]) -> bool:
    """An output note vault-bmad wrote for the same source task, its body as written."""
    parts = split_note(text)
    if parts is None:
        return False
    try:
        data = yaml.load(parts.yaml, Loader=SAFE_YAML_LOADER)  # a safe loader
    except yaml.YAMLError:
        return False
    return (
        isinstance(data, dict)
        and data.get("generated_by") == GENERATED_BY
        and data.get("source_task") == keys.get("source_task")
        and data.get("content_sha") == _body_sha(parts.body)
    )


def _output_text(existing: str | None, keys: Mapping[str, object | None], body: str) -> str:
    """The output note: our keys over the old note's frontmatter (user keys stay), new body."""
    parts = split_note(existing) if existing is not None else None
    if parts is None:
        lines = "".join(
            f"{yaml_value(key)}: {yaml_value(value)}\n"
            for key, value in keys.items()
            if value is not None
        )
        return f"---\n{lines}---\n{body}"
    head = set_frontmatter_keys(parts.bom + parts.opening + parts.yaml + parts.closing, keys)
    return head + body


def _sibling_paths(rel: str) -> Iterator[str]:
    """ "Docs/PRD.md", then "Docs/PRD (2).md", "Docs/PRD (3).md", ..."""
    yield rel
    pure = PurePosixPath(rel)
    for number in range(2, _MAX_SIBLINGS + 1):
        yield str(pure.with_name(f"{pure.stem} ({number}){pure.suffix}"))


def _body_sha(body: str) -> str:
    """A short hash of a body, blind to line-ending style and surrounding blank lines."""
    return hashlib.sha256(body.replace("\r\n", "\n").strip().encode("utf-8")).hexdigest()[:16]


def _text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable where the OS allows opening a folder."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
