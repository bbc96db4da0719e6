"""The vault folder, or a folder in it, deleted and made again: real watchdog observers
notice, watch it again, and the service says so in `/api/health` meanwhile."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import WriteNote
from tests.waiting import wait_until
from vault_bmad.config import load_settings
from vault_bmad.service import Service
from vault_bmad.vault.changes import VaultChange
from vault_bmad.vault.watcher import VaultWatcher


class Batches:
    """What a watcher hands on, kept for a test to wait on."""

    def __init__(self) -> None:
        self.changes: list[VaultChange] = []
        self._lock = threading.Lock()

    def __call__(self, batch: list[VaultChange]) -> None:
        with self._lock:
            self.changes += batch

    def paths(self, kind: str = "changed") -> set[str]:
        with self._lock:
            return {change.path for change in self.changes if change.kind == kind}


def test_the_vault_folder_deleted_and_made_again_is_watched_again(vault: Path) -> None:
    (vault / "Tasks").mkdir()
    (vault / "Tasks" / "A.md").write_text("a\n")
    seen = Batches()
    with VaultWatcher(vault, seen, debounce_s=0.05) as watcher:
        shutil.rmtree(vault)
        wait_until(lambda: watcher.problem is not None)
        assert str(vault) in (watcher.problem or "") and "gone" in (watcher.problem or "")
        (vault / "Tasks").mkdir(parents=True)
        (vault / "Tasks" / "B.md").write_text("b\n")
        wait_until(lambda: watcher.problem is None)
        wait_until(lambda: {"", "Tasks/B.md"} <= seen.paths())  # the whole folder, again
        (vault / "Tasks" / "C.md").write_text("c\n")
        wait_until(lambda: "Tasks/C.md" in seen.paths())  # and what happens in it after


def test_a_vault_folder_replaced_at_once_is_watched_again(vault: Path, tmp_path: Path) -> None:
    """Moved away and another put in its place between two looks: told by its identity."""
    seen = Batches()
    with VaultWatcher(vault, seen, debounce_s=0.05) as watcher:
        vault.rename(tmp_path / "old vault")
        vault.mkdir()
        (vault / "New.md").write_text("new\n")
        wait_until(lambda: "New.md" in seen.paths())
        (vault / "Later.md").write_text("later\n")
        wait_until(lambda: "Later.md" in seen.paths())
        (tmp_path / "old vault" / "Stale.md").write_text("not in the vault any more\n")
        time.sleep(0.5)
        assert "Stale.md" not in seen.paths() and watcher.problem is None


def test_a_subfolder_deleted_and_made_again_is_still_watched(vault: Path) -> None:
    (vault / "Tasks").mkdir()
    seen = Batches()
    with VaultWatcher(vault, seen, debounce_s=0.05):
        shutil.rmtree(vault / "Tasks")
        wait_until(lambda: "Tasks" in seen.paths("deleted"))
        (vault / "Tasks").mkdir()
        time.sleep(0.2)
        (vault / "Tasks" / "Again.md").write_text("again\n")
        wait_until(lambda: "Tasks/Again.md" in seen.paths())


def test_serve_tells_the_vault_is_gone_and_runs_it_once_back(vault: Path, write: WriteNote) -> None:
    agent = "---\ntype: agent\n---\nWrites.\n"
    write("Agents/Writer.md", agent)
    running = Service(vault, load_settings(vault, None, overrides={"port": 0, "debounce_ms": 50}))
    running.start()
    health = running.url + "api/health"
    try:
        assert httpx.get(health, timeout=30).json()["status"] == "ok"
        shutil.rmtree(vault)
        wait_until(lambda: "watcher" in httpx.get(health, timeout=30).json()["broken"])
        gone = httpx.get(health, timeout=30)
        assert gone.status_code == 503 and gone.json()["status"] == "degraded"
        assert str(vault) in gone.json()["broken"]["watcher"]
        write("Agents/Writer.md", agent)
        task = write("Tasks/Back.md", "---\ntype: task\nstatus: todo\n---\nWelcome back.\n")
        wait_until(lambda: "watcher" not in httpx.get(health, timeout=30).json()["broken"])
        wait_until(lambda: "status: done" in task.read_text())
        # The state folder went with the vault: the health says so, and how to mend it.
        assert "restart vault-bmad" in httpx.get(health, timeout=30).json()["broken"]["store"]
    finally:
        running.stop()
