"""`vault-bmad serve` as a real process over a temporary vault, driven through its files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import WriteNote
from tests.waiting import wait_until
from vault_bmad.runtimes.loopback_llm import LoopbackLLM, free_port


class Served:
    """A running `vault-bmad serve` process."""

    def __init__(self, vault: Path, env: dict[str, str]) -> None:
        self.vault = vault
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vault_bmad.cli", "serve", str(vault), "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_until(self._healthy, "the service did not come up")

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"serve exited early: {self.process.stdout.read()}")  # type: ignore[union-attr]
        try:
            return httpx.get(self.url + "/api/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=30)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        output, _ = self.process.communicate(timeout=timeout)
        return self.process.returncode, output


def status_of(note: Path) -> str | None:
    for line in note.read_text().splitlines():
        if line.startswith("status:"):
            return line.split(":", 1)[1].strip()
    return None


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "VAULT_BMAD_DEBOUNCE_MS": "50",
        "VAULT_BMAD_BACKOFF_BASE_S": "0.01",
        "VAULT_BMAD_HEALTH_COOLDOWN_S": "0.2",
    }


@pytest.fixture
def serve(env: dict[str, str]) -> Iterator[Callable[[Path], Served]]:
    started: list[Served] = []

    def start(vault: Path) -> Served:
        started.append(Served(vault, env))
        return started[-1]

    yield start
    for served in started:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait(60)
        if served.process.stdout is not None:  # else a failed test leaks the pipe
            served.process.stdout.close()


def test_new_note_runs_rerun_rename_and_no_loop(
    vault: Path, write: WriteNote, serve: Callable[[Path], Served]
) -> None:
    write("Agents/Writer.md", "---\ntype: agent\nexpertise: [writing]\n---\nYou write.\n")
    served = serve(vault)
    note = write("Tasks/Hello.md", "---\ntype: task\n# keep me\n---\nSay hello.\n")
    wait_until(lambda: status_of(note) == "done", "the new task did not run")
    assert "# keep me" in note.read_text()
    # The API's snapshot follows the engine at most a tenth of a second behind.
    wait_until(lambda: served.get("/api/tasks").json()["tasks"][0]["status"] == "done", "api")
    [task] = served.get("/api/tasks").json()["tasks"]
    assert (task["id"], task["status"], task["agent"]) == ("tasks/hello", "done", "writer")

    # The service's own writes trigger no loop: the attempt count stays at one.
    time.sleep(1.0)
    history = served.get("/api/tasks/tasks/hello").json()["attempts"]
    assert len(history) == 1

    note.write_text(note.read_text().replace("status: done", "status: todo"))
    wait_until(
        lambda: len(served.get("/api/tasks/tasks/hello").json()["attempts"]) == 2,
        "setting status: todo did not run the task again",
    )
    wait_until(lambda: status_of(note) == "done", "the re-run did not finish")

    renamed = vault / "Tasks/Greeting.md"
    note.rename(renamed)
    wait_until(
        lambda: [t["id"] for t in served.get("/api/tasks").json()["tasks"]] == ["tasks/greeting"],
        "the rename was not followed",
    )
    code, output = served.stop()
    assert code == 0, output


def test_broken_note_leaves_the_service_up(
    vault: Path, write: WriteNote, serve: Callable[[Path], Served]
) -> None:
    write("Agents/A.md", "---\ntype: agent\n---\n")
    served = serve(vault)
    bad = write("Tasks/Bad.md", "---\ntype: task\npriority: soonish\n---\nbad\n")
    broken = write("Tasks/Broken.md", "---\ntype: task\nagent: [[[\n---\nbroken\n")
    (vault / "Tasks/Binary.md").write_bytes(b"\x00\xff" * 1000)
    conflict = write("Tasks/Good (conflict 2026-11-25 10.00.00).md", "---\ntype: task\n---\nx\n")
    wait_until(lambda: status_of(bad) == "invalid", "the invalid note was not marked")
    wait_until(lambda: status_of(broken) == "invalid", "the broken note was not marked")
    problems = served.get("/api/problems").json()["problems"]
    assert {p["path"] for p in problems} == {
        "Tasks/Bad.md",
        "Tasks/Broken.md",
        "Tasks/Binary.md",
        "Tasks/Good (conflict 2026-11-25 10.00.00).md",
    }
    assert status_of(conflict) is None  # reported, not run, and not written into
    good = write("Tasks/Good.md", "---\ntype: task\n---\nfine\n")
    wait_until(lambda: status_of(good) == "done", "a good note did not run beside bad ones")
    bad.write_text(bad.read_text().replace("soonish", "high"))  # fixed: it runs
    wait_until(lambda: status_of(bad) == "done", "the fixed note did not run")
    assert served.get("/api/health").json()["status"] == "ok"
    assert served.stop()[0] == 0


def test_sigterm_stops_cleanly_and_sigkill_loses_nothing(
    vault: Path, write: WriteNote, serve: Callable[[Path], Served], env: dict[str, str]
) -> None:
    write("Agents/L.md", "---\ntype: agent\nruntime: llm\ncapacity: 4\n---\n")
    slow = write("Tasks/Slow.md", "---\ntype: task\nagent: l\ntimeout: 120\n---\nslow\n")
    with LoopbackLLM(latency=lambda: 60.0) as server:
        env["VAULT_BMAD_LLM_BASE_URL"] = server.base_url
        served = serve(vault)
        wait_until(lambda: status_of(slow) == "running", "the slow task did not start")
        started = time.monotonic()
        code, output = served.stop(signal.SIGTERM)
        assert code == 0, output
        assert time.monotonic() - started < 30  # not the task's minute
        assert "back to todo: tasks/slow" in output
        assert status_of(slow) == "todo"

        served = serve(vault)
        wait_until(lambda: status_of(slow) == "running", "the restart did not run it")
        served.stop(signal.SIGKILL)
        assert status_of(slow) == "running"  # killed: nothing could write it back
    with LoopbackLLM() as fast:
        env["VAULT_BMAD_LLM_BASE_URL"] = fast.base_url
        served = serve(vault)
        wait_until(lambda: status_of(slow) == "done", "the restart lost the killed task")
        assert fast.calls == 1
        assert served.stop()[0] == 0


def test_binding_beyond_loopback_needs_a_token(vault: Path, env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vault_bmad.cli", "serve", str(vault), "--host", "0.0.0.0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2  # a setup error
    assert "set a token first" in result.stderr


def test_serve_tells_its_life_as_json_lines(vault: Path, env: dict[str, str]) -> None:
    port = free_port()
    command = [sys.executable, "-m", "vault_bmad.cli", "serve", str(vault), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--format", "json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        serving = json.loads(process.stdout.readline())
        dashboard = f"http://127.0.0.1:{port}/"
        assert serving == {"event": "serving", "dashboard": dashboard}
        assert httpx.get(dashboard + "api/health", timeout=30).status_code == 200
        process.send_signal(signal.SIGTERM)
        output, errors = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=60)
    assert process.returncode == 0, errors
    stopping, stopped = (json.loads(line) for line in output.splitlines())
    assert stopping == {"event": "stopping", "dashboard": dashboard}
    assert stopped == {"event": "stopped", "dashboard": dashboard, "back_to_todo": []}


def test_the_serve_log_shows_task_progress_not_polls(
    vault: Path, write: WriteNote, serve: Callable[[Path], Served]
) -> None:
    write("Agents/Writer.md", "---\ntype: agent\n---\nWrites.\n")
    served = serve(vault)
    write("Tasks/Hello.md", "---\ntype: task\nagent: writer\n---\nHello.\n")
    wait_until(lambda: status_of(vault / "Tasks/Hello.md") == "done", "the task never ran")
    for _ in range(20):  # what a dashboard polling for a while sends
        assert served.get("/api/metrics?since=1h").status_code == 200
    assert served.get("/api/tasks/no-such-task").status_code == 404
    code, output = served.stop()
    assert code == 0
    lines = output.splitlines()
    assert any(line.split()[:2] == ["started", "tasks/hello"] for line in lines), output
    assert any(line.split()[:2] == ["done", "tasks/hello"] and " s" in line for line in lines)
    assert not [line for line in lines if "/api/metrics" in line]  # no line per poll
    assert [line for line in lines if "/api/tasks/no-such-task" in line]  # failures show
