"""The vault watcher on real temporary vaults with a real watchdog Observer and threads."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.waiting import WAIT_S
from vault_bmad.errors import ConfigError
from vault_bmad.vault.changes import VaultChange
from vault_bmad.vault.watcher import VaultWatcher
from vault_bmad.vault.writer import NoteWriter


def changed(path: str) -> VaultChange:
    return VaultChange("changed", path)


class Recorder:
    """Collects batches from the watcher's thread; tests wait on it with a timeout."""

    def __init__(self) -> None:
        self.batches: list[tuple[float, list[VaultChange]]] = []
        self._changed = threading.Condition()

    def __call__(self, batch: list[VaultChange]) -> None:
        with self._changed:
            self.batches.append((time.monotonic(), batch))
            self._changed.notify_all()

    @property
    def changes(self) -> list[VaultChange]:
        with self._changed:
            return [change for _, batch in self.batches for change in batch]

    def wait_for(self, wanted: VaultChange, timeout: float = WAIT_S) -> float:
        """Wait until `wanted` is reported; returns when it was delivered."""

        def delivered_at() -> float | None:
            for at, batch in self.batches:
                if wanted in batch:
                    return at
            return None

        with self._changed:
            assert self._changed.wait_for(lambda: delivered_at() is not None, timeout), (
                f"{wanted} not reported; got {self.batches}"
            )
            at = delivered_at()
            assert at is not None
            return at


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + WAIT_S
    while (leaked := set(threading.enumerate()) - before) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not leaked, f"threads left running: {leaked}"


StartWatcher = Callable[..., tuple[VaultWatcher, Recorder]]


@pytest.fixture
def watch(vault: Path) -> Iterator[StartWatcher]:
    """Start a watcher on the vault (short debounce unless told); stopped after the test."""
    started: list[VaultWatcher] = []

    def start(**options: object) -> tuple[VaultWatcher, Recorder]:
        recorder = Recorder()
        options.setdefault("debounce_s", 0.05)
        watcher = VaultWatcher(vault, recorder, **options)  # type: ignore[arg-type]
        started.append(watcher)
        watcher.start()
        return watcher, recorder

    yield start
    for watcher in started:
        watcher.stop()


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_a_new_note_is_reported(vault: Path, watch: StartWatcher) -> None:
    _, recorder = watch()
    write(vault / "Tasks" / "New.md", "---\ntype: task\nstatus: todo\n---\nDo it.\n")
    recorder.wait_for(changed("Tasks/New.md"))
    assert recorder.changes == [changed("Tasks/New.md")]


def test_a_burst_of_writes_is_one_batch_with_one_change(vault: Path, watch: StartWatcher) -> None:
    note = vault / "Busy.md"
    write(note, "0")
    _, recorder = watch(debounce_s=2.0, max_delay_s=30.0)  # a stalled writer is not quiet
    for number in range(50):  # about 0.3 s of saves
        write(note, f"save {number}\n")
        time.sleep(0.006)
    recorder.wait_for(changed("Busy.md"))
    write(vault / "After.md", "a later, separate save")
    recorder.wait_for(changed("After.md"))
    assert [batch for _, batch in recorder.batches] == [[changed("Busy.md")], [changed("After.md")]]


def test_an_atomic_save_is_one_change(vault: Path, watch: StartWatcher) -> None:
    write(vault / "Note.md", "old")
    _, recorder = watch()
    temporary = vault / ".Note.md.4f2a.tmp"
    write(temporary, "new text")
    os.replace(temporary, vault / "Note.md")
    recorder.wait_for(changed("Note.md"))
    write(vault / "Sentinel.md", "s")
    recorder.wait_for(changed("Sentinel.md"))
    assert recorder.changes == [changed("Note.md"), changed("Sentinel.md")]


def test_a_rename_is_followed(vault: Path, watch: StartWatcher) -> None:
    write(vault / "Draft.md", "text")
    _, recorder = watch()
    os.rename(vault / "Draft.md", vault / "Final.md")
    recorder.wait_for(VaultChange("moved", "Final.md", "Draft.md"))
    assert recorder.changes == [VaultChange("moved", "Final.md", "Draft.md")]


def test_a_folder_rename_moves_each_note(vault: Path, watch: StartWatcher) -> None:
    for path in ("Old/A.md", "Old/B.md", "Old/Deep/C.md", "Old/picture.png"):
        write(vault / path, path)
    _, recorder = watch()
    os.rename(vault / "Old", vault / "New")
    expected = [
        VaultChange("moved", f"New/{name}", f"Old/{name}")
        for name in ("A.md", "B.md", "Deep/C.md", "picture.png")
    ]
    for change in expected:
        recorder.wait_for(change)
    write(vault / "Sentinel.md", "s")
    recorder.wait_for(changed("Sentinel.md"))
    assert sorted(recorder.changes, key=lambda c: c.path) == [
        *expected,
        changed("Sentinel.md"),
    ]


def test_a_delete_is_reported(vault: Path, watch: StartWatcher) -> None:
    write(vault / "Doomed.md", "bye")
    _, recorder = watch()
    (vault / "Doomed.md").unlink()
    recorder.wait_for(VaultChange("deleted", "Doomed.md"))
    assert recorder.changes == [VaultChange("deleted", "Doomed.md")]


def test_obsidian_and_service_folders_are_ignored(vault: Path, watch: StartWatcher) -> None:
    for folder in (".obsidian", ".vault-bmad", ".trash"):
        (vault / folder).mkdir()
    _, recorder = watch()
    write(vault / ".obsidian" / "workspace.json", "{}")
    write(vault / ".vault-bmad" / "cache" / "entry.bin", "x")
    write(vault / ".trash" / "Old.md", "old")
    write(vault / "Sentinel.md", "s")
    recorder.wait_for(changed("Sentinel.md"))
    assert recorder.changes == [changed("Sentinel.md")]


def test_own_writes_trigger_no_loop_but_a_user_edit_after_them_does(
    vault: Path, watch: StartWatcher
) -> None:
    task = "---\ntype: task\nstatus: todo\n---\nDo it.\n"
    write(vault / "Task.md", task)
    writer = NoteWriter(vault)
    _, recorder = watch(is_own_write=writer.wrote_last)
    outcome = writer.update("Task.md", {"status": "queued"}, task)
    assert outcome.written
    write(vault / "Sentinel.md", "s")  # the own write's events all come before this one's
    recorder.wait_for(changed("Sentinel.md"))
    assert recorder.changes == [changed("Sentinel.md")]
    write(vault / "Task.md", outcome.text + "A user's line.\n")
    recorder.wait_for(changed("Task.md"))
    assert recorder.changes == [changed("Sentinel.md"), changed("Task.md")]


def test_a_save_reaches_the_callback_at_the_services_defaults(
    vault: Path, watch: StartWatcher
) -> None:
    """How soon is the debouncer's (test_changes.py, on a clock); here a sanity bound."""
    _, recorder = watch(debounce_s=0.2, max_delay_s=0.5)  # the service's defaults
    saved_at = time.monotonic()
    write(vault / "Tasks" / "Urgent.md", "---\ntype: task\nstatus: todo\n---\nNow.\n")
    delivered_at = recorder.wait_for(changed("Tasks/Urgent.md"))
    assert delivered_at - saved_at < 10


def test_a_failing_callback_does_not_stop_the_watcher(vault: Path, watch: StartWatcher) -> None:
    recorder = Recorder()

    def flaky(batch: list[VaultChange]) -> None:
        recorder(batch)
        if len(recorder.batches) == 1:
            raise RuntimeError("the service choked")

    watcher = VaultWatcher(vault, flaky, debounce_s=0.05)
    with watcher:
        write(vault / "First.md", "1")
        recorder.wait_for(changed("First.md"))
        write(vault / "Second.md", "2")
        recorder.wait_for(changed("Second.md"))
    assert not watcher.running


def test_start_and_stop_are_idempotent_and_restartable(vault: Path) -> None:
    recorder = Recorder()
    watcher = VaultWatcher(vault, recorder, debounce_s=0.05)
    watcher.stop()  # never started: nothing to do
    watcher.start()
    watcher.start()
    assert watcher.running
    watcher.stop()
    watcher.stop()
    assert not watcher.running
    with watcher:
        write(vault / "Again.md", "x")
        recorder.wait_for(changed("Again.md"))


def test_a_missing_vault_folder_is_a_config_error(tmp_path: Path) -> None:
    watcher = VaultWatcher(tmp_path / "nowhere", Recorder())
    with pytest.raises(ConfigError, match="vault folder not found"):
        watcher.start()
    assert not watcher.running
