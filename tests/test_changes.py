"""Coalescing raw file events into vault changes, on a hand-moved clock; no threads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vault_bmad.vault.changes import (
    ChangeDebouncer,
    FileEvent,
    VaultChange,
    is_conflict_copy,
    is_scratch_file,
)
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.watcher import apply_to_index


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def debouncer(clock: FakeClock) -> ChangeDebouncer:
    return ChangeDebouncer("/vault", quiet_s=0.2, max_delay_s=0.5, clock=clock)


def created(path: str) -> FileEvent:
    return FileEvent("created", path)


def modified(path: str) -> FileEvent:
    return FileEvent("modified", path)


def deleted(path: str, *, folder: bool = False) -> FileEvent:
    return FileEvent("deleted", path, is_directory=folder)


def moved(source: str, dest: str, *, folder: bool = False) -> FileEvent:
    return FileEvent("moved", source, dest, is_directory=folder)


def changed(path: str) -> VaultChange:
    return VaultChange("changed", path)


def test_repeated_modifications_wait_for_quiet_then_collapse(
    debouncer: ChangeDebouncer, clock: FakeClock
) -> None:
    assert debouncer.due_in() is None
    for _ in range(20):
        debouncer.add(modified("Tasks/Do it.md"))
        clock.now += 0.01
    assert debouncer.due_in() == pytest.approx(0.19)  # 0.01 s of quiet, not 0.2
    clock.now += 0.19
    assert debouncer.due_in() == 0.0
    assert debouncer.take() == [changed("Tasks/Do it.md")]
    assert not debouncer.pending


def test_a_continuous_burst_is_flushed_at_the_max_delay(
    debouncer: ChangeDebouncer, clock: FakeClock
) -> None:
    debouncer.add(created("Note.md"))
    delivered = []
    for _ in range(80):  # a save every 0.125 s for 10 s: never 0.2 s of quiet
        clock.now += 0.125
        if debouncer.due_in() == 0.0:  # as the watcher's flush loop asks
            delivered.append((clock.now, debouncer.take()))
        debouncer.add(modified("Note.md"))
    assert [at for at, _ in delivered] == [100.5 + 0.5 * n for n in range(20)]
    assert all(batch == [changed("Note.md")] for _, batch in delivered)


def test_create_then_delete_cancels(debouncer: ChangeDebouncer) -> None:
    debouncer.add(created("Scratch.md"))
    debouncer.add(modified("Scratch.md"))
    debouncer.add(deleted("Scratch.md"))
    assert debouncer.take() == []


def test_delete_and_delete_then_recreate(debouncer: ChangeDebouncer) -> None:
    debouncer.add(modified("Gone.md"))
    debouncer.add(deleted("Gone.md"))
    debouncer.add(deleted("Back.md"))
    debouncer.add(created("Back.md"))
    assert debouncer.take() == [VaultChange("deleted", "Gone.md"), changed("Back.md")]


@pytest.mark.parametrize(
    "events",
    [
        # a hidden temporary file renamed onto the note (vault-bmad's own writer, Obsidian)
        [created(".Note.md.tmp"), modified(".Note.md.tmp"), moved(".Note.md.tmp", "Note.md")],
        [created("Note.md.tmp"), modified("Note.md.tmp"), moved("Note.md.tmp", "Note.md")],
        [created(".#Note.md"), moved(".#Note.md", "Note.md")],
        # vim: rename the note to a backup, write anew, drop the backup
        [
            moved("Note.md", "Note.md~"),
            created("Note.md"),
            modified("Note.md"),
            deleted("Note.md~"),
        ],
        # an editor that deletes, then writes
        [deleted("Note.md"), created("Note.md"), modified("Note.md")],
        # vim's writability probe next to a plain save
        [created("4913"), deleted("4913"), modified("Note.md")],
    ],
)
def test_a_save_through_a_temporary_file_is_one_change(
    debouncer: ChangeDebouncer, events: list[FileEvent]
) -> None:
    debouncer.add_all(events)
    assert debouncer.take() == [changed("Note.md")]


def test_moves(debouncer: ChangeDebouncer) -> None:
    debouncer.add(moved("A.md", "B.md"))
    debouncer.add(moved("C.md", "D.md"))
    debouncer.add(modified("D.md"))
    debouncer.add(created("New.md"))
    debouncer.add(moved("New.md", "Newer.md"))
    debouncer.add(moved("E.md", "F.md"))
    debouncer.add(moved("F.md", "E.md"))  # and back: nothing happened
    assert debouncer.take() == [
        VaultChange("moved", "B.md", "A.md"),
        VaultChange("moved", "D.md", "C.md"),
        changed("Newer.md"),
    ]


def test_a_move_over_a_moved_note_deletes_the_overwritten_one(debouncer: ChangeDebouncer) -> None:
    debouncer.add(moved("X.md", "C.md"))
    debouncer.add(moved("Y.md", "C.md"))
    assert debouncer.take() == [
        VaultChange("deleted", "X.md"),
        VaultChange("moved", "C.md", "Y.md"),
    ]


def test_a_folder_move_is_one_move_per_note_without_duplicates(
    debouncer: ChangeDebouncer,
) -> None:
    debouncer.add(created("Old/Fresh.md"))  # pending when the folder moves
    debouncer.add(moved("Old", "New", folder=True))  # the folder event itself carries nothing
    walked = [moved("Old/A.md", "New/A.md"), moved("Old/Sub/B.md", "New/Sub/B.md")]
    debouncer.add_all([*walked, moved("Old/Fresh.md", "New/Fresh.md")])
    debouncer.add_all(walked)  # the OS's own sub-events, after the walk
    assert debouncer.take() == [
        VaultChange("moved", "New/A.md", "Old/A.md"),
        VaultChange("moved", "New/Sub/B.md", "Old/Sub/B.md"),
        changed("New/Fresh.md"),
    ]


def test_a_folder_delete_drops_pending_notes_and_names_the_folder(
    debouncer: ChangeDebouncer,
) -> None:
    debouncer.add(created("Drafts/New.md"))
    debouncer.add(modified("Drafts/Old.md"))
    debouncer.add(deleted("Drafts", folder=True))
    assert debouncer.take() == [
        VaultChange("deleted", "Drafts"),
        VaultChange("deleted", "Drafts/Old.md"),
    ]


def test_hidden_and_scratch_paths_are_not_vault_content(debouncer: ChangeDebouncer) -> None:
    ignored = [
        modified(".obsidian/workspace.json"),
        created(".vault-bmad/store.sqlite"),
        created(".trash/Old.md"),
        modified("Tasks/.hidden.md"),
        created("Note.md.swp"),
        created("~$Report.docx"),
        created("#Note.md#"),
        moved(".obsidian/a.json", ".obsidian/b.json"),
    ]
    assert [debouncer.add(event) for event in ignored] == [False] * len(ignored)
    assert not debouncer.pending
    debouncer.add(moved("Tasks/Done.md", ".trash/Done.md"))  # to Obsidian's trash: deleted
    debouncer.add(moved(".trash/Back.md", "Back.md"))  # restored: changed
    assert debouncer.take() == [VaultChange("deleted", "Tasks/Done.md"), changed("Back.md")]


def test_attachments_and_bmad_yaml_are_reported_and_an_owner_ignore_applies(
    clock: FakeClock,
) -> None:
    debouncer = ChangeDebouncer(
        "/vault", ignore=lambda path: path.startswith("Private/"), clock=clock
    )
    for path in ("Images/diagram.png", "Workflows/greenfield.yaml", "Skills/x/customize.toml"):
        debouncer.add(created(path))
    debouncer.add(created("Private/secret.md"))
    assert [change.path for change in debouncer.take()] == [
        "Images/diagram.png",
        "Skills/x/customize.toml",
        "Workflows/greenfield.yaml",
    ]


def test_absolute_paths_are_made_relative_and_outside_ones_dropped(
    debouncer: ChangeDebouncer,
) -> None:
    debouncer.add(modified("/vault/Docs/PRD.md"))
    debouncer.add(modified("/elsewhere/Note.md"))
    debouncer.add(moved("/vault/Inbox/Idea.md", "/outside/Idea.md"))  # moved out: deleted
    debouncer.add(moved("/outside/Gift.md", "/vault/Gift.md"))  # moved in: changed
    debouncer.add(modified("../escape.md"))
    assert debouncer.take() == [
        VaultChange("deleted", "Inbox/Idea.md"),
        changed("Docs/PRD.md"),
        changed("Gift.md"),
    ]


@pytest.mark.parametrize(
    ("name", "conflict"),
    [
        ("Note (conflict 2026-11-25 10.00.00).md", True),
        ("Tasks/Note (Conflicted copy Laptop 202611251000).md", True),
        ("Note (Alice's conflicted copy 2026-11-25).md", True),
        ("Note (Alice's conflicted copy 2026-11-25 (1)).md", True),
        ("Note (Case Conflict).md", True),
        ("Note (conflicted copy 2026-11-25 100000).md", True),
        ("Note (SFConflict alice@example.com 2026-11-25-10-00-00).md", True),
        ("Note.sync-conflict-20261125-100000-ABCDEF7.md", True),
        ("Note.sync-conflict-20261125-100000.md", True),
        ("Note_conflict-20261125-100000.md", True),
        ("Conflicted copy of Note.md", True),
        ("Note-DESKTOP-AB12CD3.md", True),
        ("workflow.sync-conflict-20261125-100000-XYZ1234.yaml", True),
        ("Note.md", False),
        ("Note 2.md", False),
        ("Note (2).md", False),
        ("PRD (3).md", False),
        ("Conflict resolution.md", False),
        ("Team (conflict resolution).md", False),
        ("Meeting (conflicts 2024).md", False),
        ("My-Desktop-notes.md", False),
        ("Syncing conflicts.md", False),
    ],
)
def test_is_conflict_copy(name: str, conflict: bool) -> None:
    assert is_conflict_copy(name) is conflict


@pytest.mark.parametrize(
    ("name", "scratch"),
    [("Note.md~", True), ("a/Note.md.tmp", True), ("4913", True), ("Note.md", False)],
)
def test_is_scratch_file(name: str, scratch: bool) -> None:
    assert is_scratch_file(name) is scratch


def test_apply_to_index_follows_a_swap_and_a_delete(tmp_path: Path) -> None:
    (tmp_path / "A.md").write_text("---\ntype: task\n---\nA\n", encoding="utf-8")
    (tmp_path / "B.md").write_text("B\n", encoding="utf-8")
    (tmp_path / "C.md").write_text("C\n", encoding="utf-8")
    index = VaultIndex.load(tmp_path)
    debouncer = ChangeDebouncer(tmp_path)
    os.replace(tmp_path / "A.md", tmp_path / "tmp.md")
    os.replace(tmp_path / "B.md", tmp_path / "A.md")
    os.replace(tmp_path / "tmp.md", tmp_path / "B.md")
    (tmp_path / "C.md").unlink()
    debouncer.add_all([moved("A.md", "tmp.md"), moved("B.md", "A.md"), moved("tmp.md", "B.md")])
    debouncer.add(deleted("C.md"))
    notes = apply_to_index(index, debouncer.take())
    assert sorted(index.notes) == ["A.md", "B.md"]
    assert index.notes["B.md"].type == "task"
    assert index.notes["A.md"].type is None
    assert sorted(note.path for note in notes) == ["A.md", "B.md"]
