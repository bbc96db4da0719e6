"""Damaged stores and malformed notes: the disposable cache is rebuilt, a damaged state
database gets one clear line, `/api/health` tells what is broken, and one bad note never
breaks a page or stalls the rest. Real SQLite files, real runs, a real service on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.conftest import WriteNote
from tests.waiting import wait_until
from vault_bmad.cache.disk import DiskCache
from vault_bmad.config import STATE_DB, load_settings
from vault_bmad.runner import EXIT_NEEDS_INPUT
from vault_bmad.service import Service

LATIN1_NAME = b"Caf\xe9.md"  # a file name written on a Latin-1 system: not UTF-8


def vault_bmad(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": str(cwd / "xdg")}
    command = [sys.executable, "-m", "vault_bmad.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def damage(path: Path) -> None:
    """Overwrite a whole file, as a bad disk or a stray tool would."""
    junk = b"this is not a database any more "
    with path.open("r+b") as file:
        file.write(junk * (max(path.stat().st_size, 16_384) // len(junk) + 1))


def test_a_damaged_disk_cache_is_moved_aside_and_rebuilt(sample_vault: Path) -> None:
    first = vault_bmad("run", str(sample_vault), cwd=sample_vault.parent)
    assert first.returncode == EXIT_NEEDS_INPUT, first.stderr  # its interviewer asks
    cache = sample_vault / ".vault-bmad" / "cache"
    damage(cache / "cache.db")
    task = sample_vault / "Tasks" / "Again.md"
    task.write_text("---\ntype: task\nstatus: todo\n---\nOnce more.\n")
    second = vault_bmad("run", str(sample_vault), cwd=sample_vault.parent)
    assert second.returncode == EXIT_NEEDS_INPUT, second.stderr
    assert "Traceback" not in second.stderr
    assert f"the disk cache {cache} could not be read" in second.stderr
    assert "moved aside" in second.stderr
    assert (cache.parent / "cache.damaged" / "cache.db").read_bytes().startswith(b"this is not")
    assert "status: done" in task.read_text()
    third = vault_bmad("run", str(sample_vault), cwd=sample_vault.parent)
    assert third.returncode == EXIT_NEEDS_INPUT and "could not be read" not in third.stderr


def test_a_damaged_state_database_stops_the_start_with_one_clear_line(sample_vault: Path) -> None:
    first = vault_bmad("run", str(sample_vault), cwd=sample_vault.parent)
    assert first.returncode == EXIT_NEEDS_INPUT
    database = sample_vault / ".vault-bmad" / STATE_DB
    damage(database)
    for command in ("run", "report"):
        refused = vault_bmad(command, str(sample_vault), cwd=sample_vault.parent)
        assert refused.returncode != 0
        [line] = refused.stderr.strip().splitlines()
        assert str(database) in line and "mv " in line and "Traceback" not in line
    # Following the advice: the notes still say what is done, so nothing runs again.
    database.rename(database.with_name(STATE_DB + ".damaged"))
    for leftover in database.parent.glob(STATE_DB + "-*"):
        leftover.unlink()
    again = vault_bmad("run", str(sample_vault), "--format", "json", cwd=sample_vault.parent)
    assert again.returncode == EXIT_NEEDS_INPUT, again.stderr  # it asks again
    assert '"done": 0' in again.stdout and '"failed": 0' in again.stdout


def test_health_reports_a_store_it_cannot_read(vault: Path, write: WriteNote) -> None:
    write("Agents/Writer.md", "---\ntype: agent\n---\nWrites.\n")
    write("Tasks/Hello.md", "---\ntype: task\n---\nSay hello.\n")
    running = Service(vault, load_settings(vault, None, overrides={"port": 0}))
    running.start()
    try:
        wait_until(lambda: [t.status for t in running.snapshot().tasks] == ["done"])
        healthy = httpx.get(running.url + "api/health", timeout=30)
        assert healthy.status_code == 200 and healthy.json()["status"] == "ok"
        running.store.flush()
        database = vault / ".vault-bmad" / STATE_DB
        damage(database)
        damage(database.with_name(STATE_DB + "-wal"))
        page = httpx.get(running.url + "tasks/tasks/hello", timeout=30)
        health = httpx.get(running.url + "api/health", timeout=30)
        assert health.status_code == 503
        body = health.json()
        assert body["status"] == "degraded"
        assert str(database) in body["broken"]["store"]
        if page.status_code == 500:  # a page that failed is told too
            assert "GET /tasks/tasks/hello" in body["broken"]["pages"]
    finally:
        running.stop()


def test_a_note_named_in_latin1_breaks_no_page_and_stalls_nothing(
    vault: Path, write: WriteNote
) -> None:
    write("Agents/Writer.md", "---\ntype: agent\n---\nWrites.\n")
    write("Tasks/Hello.md", "---\ntype: task\n---\nSay hello.\n")
    (vault / "Tasks").joinpath(os.fsdecode(LATIN1_NAME)).write_text("---\ntype: task\n---\nÇa.\n")
    running = Service(vault, load_settings(vault, None, overrides={"port": 0}))
    running.start()
    try:
        wait_until(lambda: [t.status for t in running.snapshot().tasks] == ["done"])
        assert httpx.get(running.url + "tasks/tasks/hello", timeout=30).status_code == 200
        for page in ("tasks", "problems", "api/tasks"):
            assert httpx.get(running.url + page, timeout=30).status_code == 200, page
        [problem] = httpx.get(running.url + "api/problems", timeout=30).json()["problems"]
        assert problem["path"] == "Tasks/Caf\ufffd.md"
        assert "not UTF-8" in problem["message"] and "rename" in problem["message"]
        health = httpx.get(running.url + "api/health", timeout=30).json()
        assert health["status"] == "ok" and health["problems"] == 1
    finally:
        running.stop()
    checked = vault_bmad("check", str(vault), cwd=vault.parent)
    assert (
        checked.returncode == 1
        and "Tasks/Caf\ufffd.md: the file name is not UTF-8" in checked.stdout
    )


def test_the_disk_cache_failing_underneath_reads_as_a_miss_and_mends(tmp_path: Path) -> None:
    """Each call on a thread of its own, as the orchestrator's workers make them."""
    folder = tmp_path / "state" / "cache"

    def on_a_new_thread(call: Callable[[], object]) -> object:
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(call).result()

    with DiskCache(folder, capacity=100) as level:
        level.set("answer", "42")
        shutil.rmtree(folder)  # the state folder's cache deleted while running
        assert on_a_new_thread(lambda: level.get("answer")) is None  # a miss, not an error
        on_a_new_thread(lambda: level.set("answer", "43"))
        assert level.get("answer") == "43" and (folder / "cache.db").is_file()  # set up again
        for leftover in folder.glob("cache.db*"):
            damage(leftover)
        assert on_a_new_thread(lambda: level.get("answer", "missed")) == "missed"
        on_a_new_thread(lambda: level.set("answer", "44"))
        assert on_a_new_thread(lambda: level.get("answer")) == "44"
        assert (folder.parent / "cache.damaged").is_dir()
        shutil.rmtree(tmp_path / "state")  # its parent gone too: nothing is made again
        on_a_new_thread(lambda: level.set("answer", "45"))
        assert on_a_new_thread(lambda: level.get("answer")) is None
        assert not (tmp_path / "state").exists()


def test_a_new_disk_cache_opens_behind_and_loses_nothing(tmp_path: Path) -> None:
    """A folder that does not exist yet is made on a thread of its own: what is set at once
    is kept, and an existing folder serves its keys as soon as it is constructed."""
    folder = tmp_path / "state" / "cache"
    with DiskCache(folder, capacity=100) as level:
        level.set("answer", "42")  # waits for the folder, never dropped
        assert level.get("answer") == "42"
    with DiskCache(folder, capacity=100) as level:  # exists: opened before it returns
        assert level.get("answer") == "42" and len(level) == 1
    blocked = tmp_path / "a file"
    blocked.write_text("not a folder")
    with DiskCache(blocked / "cache", capacity=100) as level:  # cannot be made: no error
        level.set("answer", "42")
        assert level.get("answer", "missed") == "missed"
        assert level.stats().misses == 1
    assert blocked.read_text() == "not a folder"
