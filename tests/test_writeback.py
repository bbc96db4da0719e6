"""Task state into task notes on the write threads: merged while waiting, flushed, closed."""

from __future__ import annotations

import threading
from pathlib import Path

import frontmatter

from tests.conftest import WriteNote
from tests.waiting import WAIT_S
from vault_bmad.engine.writeback import TaskNotes
from vault_bmad.model.definitions import TaskDef
from vault_bmad.vault.writer import NoteWriter

TASK = TaskDef(id="tasks/ask", path="Tasks/Ask.md", title="Ask")


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
    assert future.result(5) == "Outputs/Tasks/Ask - result.md"
    assert (vault / "Outputs/Tasks/Ask - result.md").read_text().endswith("The answer.\n")
    notes.close()
    names = [thread.name for thread in threading.enumerate()]
    assert not [n for n in names if n.startswith(("vault-bmad-state", "vault-bmad-output"))]


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
    other = TaskDef(id="tasks/other", path="Tasks/Other.md", title="Other")
    write(other.path, "---\ntype: task\nstatus: todo\n---\nOther.\n")
    other_written, let_go = threading.Event(), threading.Event()

    def held_index_update(path: str) -> None:  # a write to Other holds the thread up
        if path == other.path:
            other_written.set()
            let_go.wait(WAIT_S)

    notes = TaskNotes(NoteWriter(vault), on_written=held_index_update)
    try:
        notes.blocked(TASK, "waiting on [[Other]]")
        notes.flush()
        note.write_text(note.read_text().replace("status: blocked", "status: todo"))  # the user
        notes.forget(TASK.path)  # the engine took the edit: the task runs again
        notes.queued(other)
        assert other_written.wait(WAIT_S)
        notes.running(TASK, "dev", started=1_800_000_000.0, attempt=1)  # these two merge
        notes.failed(TASK, "boom", completed=1_800_000_001.0, attempts=1)
        let_go.set()
        notes.flush()
    finally:
        let_go.set()
        notes.close()
    post = frontmatter.load(note)
    assert (post["status"], post["error"]) == ("failed", "boom")


def test_an_old_copy_saved_as_the_task_ends_is_settled_after_its_last_write(
    vault: Path, write: WriteNote
) -> None:
    """The engine asks about the old copy while the task's `done` still waits for its write
    (or is on disk but not yet remembered): decided after that write, the note ends done."""
    original = "---\ntype: task\nstatus: todo\n---\nAsk.\n"
    note = write("Tasks/Ask.md", original)
    other = TaskDef(id="tasks/other", path="Tasks/Other.md", title="Other")
    write(other.path, "---\ntype: task\nstatus: todo\n---\nOther.\n")
    other_written, let_go = threading.Event(), threading.Event()

    def held_index_update(path: str) -> None:  # a write to Other holds the thread up
        if path == other.path:
            other_written.set()
            let_go.wait(WAIT_S)

    notes = TaskNotes(NoteWriter(vault), on_written=held_index_update)
    try:
        notes.running(TASK, "dev", started=1_800_000_000.0, attempt=1)
        notes.flush()
        notes.queued(other)
        assert other_written.wait(WAIT_S)
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
        threading.Timer(0.2, let_go.set).start()
        assert notes.settle_edit(TASK.path) is False  # no re-run
        notes.flush()
    finally:
        let_go.set()
        notes.close()
    post = frontmatter.load(note)
    assert (post["status"], post["agent_used"], post["attempts"]) == ("done", "dev", 1)
