"""Task state into task notes on the write threads: merged while waiting, in batches,
`queued` held back until the engine has dispatched, flushed, closed."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import frontmatter
import pytest

from tests.conftest import WriteNote
from tests.waiting import WAIT_S
from vault_bmad.engine.writeback import TaskNotes
from vault_bmad.model.definitions import TaskDef
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.writer import NoteWriter

TASK = TaskDef(id="tasks/ask", path="Tasks/Ask.md", title="Ask")
OTHER = TaskDef(id="tasks/other", path="Tasks/Other.md", title="Other")


class HeldWrites:
    """Task notes whose state write thread is held up by a write to OTHER until `let_go`."""

    def __init__(self, vault: Path, write: WriteNote) -> None:
        write(OTHER.path, "---\ntype: task\nstatus: todo\n---\nOther.\n")
        self.other_written, self.let_go = threading.Event(), threading.Event()
        self.notes = TaskNotes(NoteWriter(vault), on_written=self._hold_on_other)

    def _hold_on_other(self, path: str) -> None:
        if path == OTHER.path:
            self.other_written.set()
            self.let_go.wait(WAIT_S)


def task_named(name: str) -> TaskDef:
    return TaskDef(id=f"tasks/{name.lower()}", path=f"Tasks/{name}.md", title=name)


def status_of(note: Path) -> str:
    return str(frontmatter.load(note)["status"])


def test_a_task_that_starts_at_once_is_never_written_queued(vault: Path, write: WriteNote) -> None:
    note = write("Tasks/Ask.md", "---\ntype: task\nstatus: todo\nerror: old\n---\nAsk.\n")
    seen: list[str] = []
    notes = TaskNotes(NoteWriter(vault), on_written=lambda path: seen.append(status_of(note)))
    try:
        notes.queued(TASK)  # held until the engine has dispatched
        notes.running(TASK, "dev", started=1_800_000_000.0, attempt=1)  # it started at once
        notes.publish()
        notes.flush()
    finally:
        notes.close()
    assert seen == ["running"]  # todo -> running: one write, never queued
    assert "error" not in frontmatter.load(note)  # what queued clears, running clears


def test_published_queued_states_wait_until_nothing_else_does(
    vault: Path, write: WriteNote
) -> None:
    first, waiting, started = task_named("First"), task_named("Waiting"), task_named("Started")
    for task in (first, waiting, started):
        write(task.path, "---\ntype: task\nstatus: todo\n---\nDo it.\n")
    order: list[str] = []
    first_written, let_go, waiting_written = threading.Event(), threading.Event(), threading.Event()

    def held_on_first(path: str) -> None:
        order.append(path)
        if path == first.path:
            first_written.set()
            let_go.wait(WAIT_S)
        if path == waiting.path:
            waiting_written.set()

    notes = TaskNotes(NoteWriter(vault), on_written=held_on_first)
    try:
        notes.failed(first, "boom", completed=1_800_000_000.0, attempts=1)
        assert first_written.wait(WAIT_S)
        notes.queued(waiting)
        notes.queued(started)
        notes.publish()  # neither started at once
        notes.running(started, "dev", started=1_800_000_001.0, attempt=1)  # then this one did
        let_go.set()
        assert waiting_written.wait(WAIT_S)  # the thread is free again: queued gets written
        notes.flush()
    finally:
        let_go.set()
        notes.close()
    assert order == [first.path, started.path, waiting.path]  # running first, queued after
    assert status_of(vault / started.path) == "running"
    assert status_of(vault / waiting.path) == "queued"


def test_tasks_ending_together_are_written_as_one_batch(vault: Path, write: WriteNote) -> None:
    tasks = [task_named(f"Task {n}") for n in range(5)]
    for task in tasks:
        write(task.path, "---\ntype: task\nstatus: todo\n---\nDo it.\n")
    blocker = task_named("Blocker")
    write(blocker.path, "---\ntype: task\nstatus: todo\n---\nDo it.\n")
    blocker_written, let_go = threading.Event(), threading.Event()
    statuses_at_first_call: list[list[str]] = []

    def hold_then_look(path: str) -> None:
        if path == blocker.path:
            blocker_written.set()
            let_go.wait(WAIT_S)
        elif not statuses_at_first_call:  # the batch is on disk before anyone hears of it
            statuses_at_first_call.append([status_of(vault / t.path) for t in tasks])

    notes = TaskNotes(NoteWriter(vault), on_written=hold_then_look)
    try:
        notes.blocked(blocker, "waiting")
        assert blocker_written.wait(WAIT_S)
        for task in tasks:  # they all end while the thread is busy
            notes.failed(task, "boom", completed=1_800_000_000.0, attempts=1)
        let_go.set()
        notes.flush()
    finally:
        let_go.set()
        notes.close()
    assert statuses_at_first_call == [["failed"] * 5]


def test_the_index_learns_what_was_written_without_reading_it_back(
    vault: Path, write: WriteNote
) -> None:
    note = write("Tasks/Ask.md", "---\ntype: task\nstatus: todo\n---\nAsk.\n")
    index = VaultIndex.load(vault)
    notes = TaskNotes(NoteWriter(vault, on_written=index.learn))
    try:
        notes.failed(TASK, "boom", completed=1_800_000_000.0, attempts=2)
        asked = "Outputs/Tasks/Ask - result.md"
        output = notes.submit_output(asked, "The answer.\n", TASK.path, {"agent": "dev"}).result(
            WAIT_S
        )
        notes.flush()
    finally:
        notes.close()
    learned, learned_output = index.get(TASK.path), index.get(output)
    assert learned is not None and learned_output is not None
    assert (learned.frontmatter["status"], learned.frontmatter["error"]) == ("failed", "boom")
    assert learned_output.body == "The answer.\n"
    assert index.update(TASK.path) is learned  # its stamp matches the file: not read again
    assert index.update(output) is learned_output
    note.write_text(note.read_text().replace("status: failed", "status: todo"))  # the user
    reread = index.update(TASK.path)
    assert reread is not None and reread.frontmatter["status"] == "todo"


def test_changes_waiting_for_their_write_merge_into_one(vault: Path, write: WriteNote) -> None:
    note = write("Tasks/Ask.md", "---\ntype: task\nstatus: todo  # mine\n---\nAsk.\n")
    written: list[str] = []
    first_write_done = threading.Event()
    let_go = threading.Event()

    def slow_index_update(path: str) -> None:  # the first write holds the thread up
        written.append(path)
        first_write_done.set()
        let_go.wait(WAIT_S)

    notes = TaskNotes(NoteWriter(vault), on_written=slow_index_update)
    try:
        notes.queued(TASK)
        notes.publish()  # it did not start at once, and the write thread is free
        assert first_write_done.wait(WAIT_S)
        notes.running(TASK, "dev", started=1_800_000_000.0, attempt=1)
        notes.done(
            TASK,
            agent_id="dev",
            started=1_800_000_000.0,
            completed=1_800_000_002.0,
            attempts=1,
            cache="miss",
            output="Outputs/Ask - result.md",
        )
        let_go.set()
        notes.flush()
    finally:
        let_go.set()
        notes.close()
    assert written == ["Tasks/Ask.md", "Tasks/Ask.md"]  # queued; then running and done as one
    post = frontmatter.load(note)
    assert (post["status"], post["agent_used"], post["attempts"]) == ("done", "dev", 1)
    assert post["duration_ms"] == 2000 and post["result"] == "[[Outputs/Ask - result]]"
    assert "status: done  # mine" in note.read_text()  # the user's comment stays


def test_outputs_are_written_on_their_own_thread_and_close_stops_both(vault: Path) -> None:
    notes = TaskNotes(NoteWriter(vault))
    output = "Outputs/Tasks/Ask - result.md"
    future = notes.submit_output(output, "The answer.\n", TASK.path, {"agent": "dev"})
    assert future.result(WAIT_S) == "Outputs/Tasks/Ask - result.md"
    assert (vault / "Outputs/Tasks/Ask - result.md").read_text().endswith("The answer.\n")
    notes.close()
    names = [thread.name for thread in threading.enumerate()]
    assert not [n for n in names if n.startswith(("vault-bmad-st", "vault-bmad-out"))]


def test_set_todo_lands_after_the_writes_still_waiting(vault: Path, write: WriteNote) -> None:
    note = write("Tasks/Ask.md", "---\ntype: task\nstatus: todo\n---\nAsk.\n")
    first_write_done, let_go = threading.Event(), threading.Event()

    def slow_index_update(path: str) -> None:
        first_write_done.set()
        let_go.wait(WAIT_S)

    notes = TaskNotes(NoteWriter(vault), on_written=slow_index_update)
    try:
        notes.running(TASK, "dev", started=1_800_000_000.0, attempt=1)
        assert first_write_done.wait(WAIT_S)
        notes.failed(TASK, "boom", completed=1_800_000_001.0, attempts=1)  # waits its turn
        threading.Timer(0.2, let_go.set).start()
        notes.set_todo(TASK)  # a re-run asked for: after `failed`, never under it
        notes.flush()
        assert frontmatter.load(note)["status"] == "todo"
        notes.queued(TASK)  # vault-bmad's own todo is not mistaken for the user's edit
        notes.flush()
    finally:
        let_go.set()
        notes.close()
    post = frontmatter.load(note)
    assert post["status"] == "queued" and "error" not in post


def test_a_rerun_the_user_asked_for_is_not_kept_as_their_edit(
    vault: Path, write: WriteNote
) -> None:
    note = write("Tasks/Ask.md", "---\ntype: task\nstatus: todo\n---\nAsk.\n")
    held = HeldWrites(vault, write)
    notes = held.notes
    try:
        notes.blocked(TASK, "waiting on [[Other]]")
        notes.flush()
        note.write_text(note.read_text().replace("status: blocked", "status: todo"))  # the user
        notes.forget(TASK.path)  # the engine took the edit: the task runs again
        notes.queued(OTHER)
        notes.publish()
        assert held.other_written.wait(WAIT_S)
        notes.running(TASK, "dev", started=1_800_000_000.0, attempt=1)  # these two merge
        notes.failed(TASK, "boom", completed=1_800_000_001.0, attempts=1)
        held.let_go.set()
        notes.flush()
    finally:
        held.let_go.set()
        notes.close()
    post = frontmatter.load(note)
    assert (post["status"], post["error"]) == ("failed", "boom")


def test_flush_and_close_write_every_state_however_many_batches_it_takes(
    vault: Path, write: WriteNote
) -> None:
    tasks = [task_named(f"Task {n}") for n in range(50)]  # more than one batch holds
    for task in tasks:
        write(task.path, "---\ntype: task\nstatus: todo\n---\nDo it.\n")
    notes = TaskNotes(NoteWriter(vault))
    try:
        for task in tasks[:25]:
            notes.failed(task, "boom", completed=1_800_000_000.0, attempts=1)
        notes.flush()
        assert [status_of(vault / t.path) for t in tasks[:25]] == ["failed"] * 25
        for task in tasks[25:]:
            notes.queued(task)  # held, never published: close writes them still
    finally:
        notes.close()
    assert [status_of(vault / t.path) for t in tasks[25:]] == ["queued"] * 25


def test_outputs_for_one_note_are_written_in_the_order_asked(vault: Path) -> None:
    notes = TaskNotes(NoteWriter(vault))
    try:
        for round_ in range(5):
            wanted = f"Outputs/Shared {round_}.md"
            first = notes.submit_output(wanted, "First.\n", "Tasks/A.md", {"agent": "dev"})
            second = notes.submit_output(wanted, "Second.\n", "Tasks/B.md", {"agent": "dev"})
            others = [  # other notes at once beside them
                notes.submit_output(f"Outputs/Other {round_} {n}.md", "x\n", "Tasks/C.md", {})
                for n in range(4)
            ]
            assert first.result(WAIT_S) == wanted  # the first asked gets the name
            assert second.result(WAIT_S) == f"Outputs/Shared {round_} (2).md"
            assert all(other.result(WAIT_S) for other in others)
    finally:
        notes.close()


def test_a_note_says_done_only_once_its_output_is_in_its_folder_for_good(
    vault: Path, write: WriteNote, monkeypatch: pytest.MonkeyPatch
) -> None:
    note = write(TASK.path, "---\ntype: task\nstatus: todo\n---\nAsk.\n")
    synced: list[str] = []  # what each fsync made durable, in order
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        real_fsync(descriptor)
        synced.append(os.readlink(f"/proc/self/fd/{descriptor}"))

    monkeypatch.setattr(os, "fsync", recording_fsync)
    notes = TaskNotes(NoteWriter(vault))
    try:
        output = notes.submit_output("Outputs/Ask.md", "Yes.\n", TASK.path, {}).result(WAIT_S)
        assert str(vault / "Outputs") not in synced  # the task waited for one fsync, not two
        notes.done(
            TASK,
            agent_id="dev",
            started=1_800_000_000.0,
            completed=1_800_000_001.0,
            attempts=1,
            cache="miss",
            output=output,
        )
        notes.flush()
    finally:
        notes.close()
    assert status_of(note) == "done"
    outputs_folder = synced.index(str(vault / "Outputs"))
    task_note = next(i for i, path in enumerate(synced) if "/Tasks/" in path)
    assert outputs_folder < task_note  # the output's rename was durable before `done` was


def test_an_old_copy_saved_as_the_task_ends_is_settled_after_its_last_write(
    vault: Path, write: WriteNote
) -> None:
    """The engine asks about the old copy while the task's `done` still waits for its write
    (or is on disk but not yet remembered): decided after that write, the note ends done."""
    original = "---\ntype: task\nstatus: todo\n---\nAsk.\n"
    note = write("Tasks/Ask.md", original)
    held = HeldWrites(vault, write)
    notes = held.notes
    try:
        notes.running(TASK, "dev", started=1_800_000_000.0, attempt=1)
        notes.flush()
        notes.queued(OTHER)
        notes.publish()  # it did not start at once
        assert held.other_written.wait(WAIT_S)
        notes.done(
            TASK,
            agent_id="dev",
            started=1_800_000_000.0,
            completed=1_800_000_002.0,
            attempts=1,
            cache="miss",
            output="Outputs/Ask - result.md",
        )
        note.write_text(original)  # the editor saves what it had open
        threading.Timer(0.2, held.let_go.set).start()
        assert notes.settle_edit(TASK.path) is False  # no re-run
        notes.flush()
    finally:
        held.let_go.set()
        notes.close()
    post = frontmatter.load(note)
    assert (post["status"], post["agent_used"], post["attempts"]) == ("done", "dev", 1)
