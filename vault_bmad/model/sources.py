"""Which notes the model reads: every note except sync tools' conflict copies.

A conflict copy ("Note (conflict 2026-11-25).md") repeats a note someone must reconcile
by hand; running it would do the work twice, so it is reported instead.
"""

from __future__ import annotations

from vault_bmad.errors import Problem
from vault_bmad.vault.changes import is_conflict_copy
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.notes import Note


def model_notes(index: VaultIndex, note_type: str | None = None) -> list[Note]:
    """The notes definitions come from, sorted by path; of one type when it is given."""
    return [
        note
        for note in sorted(index.notes.values(), key=lambda n: n.path)
        if not is_conflict_copy(note.path) and (note_type is None or note.type == note_type)
    ]


def conflict_problems(index: VaultIndex) -> list[Problem]:
    return [
        Problem(
            path,
            None,
            "a sync conflict copy: it is not run; merge it into the original and delete it",
        )
        for path in sorted(index.notes)
        if is_conflict_copy(path)
    ]
