"""Stops, as real processes get them: SIGTERM and Ctrl-C on `run` and `serve` mid-run leave
no note queued or running; a port in use, a missing vault or an unreachable Dask scheduler
is one line, exit 2, and nothing written into the vault."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import WriteNote
from tests.test_serve import Served, status_of
from tests.waiting import wait_until
from vault_bmad.metrics.store import Store
from vault_bmad.runtimes.loopback_llm import LoopbackLLM, free_port

CLI = [sys.executable, "-m", "vault_bmad.cli"]
STUCK = ("queued", "running")


def slow_vault(write: WriteNote, count: int) -> list[Path]:
    """An llm agent of capacity 2 and `count` tasks: two run, the rest queue."""
    write("Agents/L.md", "---\ntype: agent\nruntime: llm\ncapacity: 2\n---\nBe brief.\n")
    return [
        write(f"Tasks/T{n}.md", f"---\ntype: task\nagent: l\ntimeout: 120\n---\nPart {n}.\n")
        for n in range(count)
    ]


def environment(tmp_path: Path, url: str) -> dict[str, str]:
    return {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "VAULT_BMAD_LLM_BASE_URL": url,
        "VAULT_BMAD_DEBOUNCE_MS": "50",
    }


def vault_files(vault: Path) -> dict[str, bytes]:
    return {
        p.relative_to(vault).as_posix(): p.read_bytes() for p in vault.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_run_with_no_note_queued_or_running(
    vault: Path, write: WriteNote, tmp_path: Path, signum: int, code: int
) -> None:
    notes = slow_vault(write, 6)
    with LoopbackLLM(latency=lambda: 60.0) as server:
        process = subprocess.Popen(
            [*CLI, "run", str(vault)],
            env=environment(tmp_path, server.base_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(lambda: sum(status_of(n) == "running" for n in notes) == 2, "no start")
        wait_until(lambda: any(status_of(n) == "queued" for n in notes), "nothing queued")
        started = time.monotonic()
        process.send_signal(signum)
        output, errors = process.communicate(timeout=60)
        stopped_in = time.monotonic() - started
    assert process.returncode == code, errors
    assert stopped_in < 30, stopped_in  # not the minute the server takes
    statuses = {note.name: status_of(note) for note in notes}
    assert not set(statuses.values()) & set(STUCK), statuses
    assert set(statuses.values()) == {"todo"}
    assert "stopped: back to todo: " + ", ".join(f"tasks/t{n}" for n in range(6)) in output
    report = next((vault / "Reports").glob("Run *.md")).read_text()
    assert "> [!note] The run was stopped; 6 tasks went back to todo" in report
    with Store(vault / ".vault-bmad" / "state.db") as store:
        assert [t.task_id for t in store.tasks() if t.status in STUCK] == []


def test_sigterm_on_serve_puts_running_and_queued_tasks_back_to_todo(
    vault: Path, write: WriteNote, tmp_path: Path
) -> None:
    notes = slow_vault(write, 5)
    with LoopbackLLM(latency=lambda: 60.0) as server:
        served = Served(vault, environment(tmp_path, server.base_url))
        try:
            wait_until(lambda: sum(status_of(n) == "running" for n in notes) == 2, "start")
            wait_until(lambda: sum(status_of(n) == "queued" for n in notes) == 3, "queue")
            started = time.monotonic()
            code, output = served.stop(signal.SIGTERM)
            stopped_in = time.monotonic() - started
        finally:
            if served.process.poll() is None:
                served.process.kill()
    assert code == 0, output
    assert stopped_in < 30, stopped_in  # not the minute the server takes
    assert {status_of(note) for note in notes} == {"todo"}
    assert "back to todo: tasks/t0, tasks/t1, tasks/t2, tasks/t3, tasks/t4" in output


def test_serve_on_a_port_in_use_is_one_line_and_writes_nothing(
    vault: Path, write: WriteNote, tmp_path: Path
) -> None:
    slow_vault(write, 2)
    before = vault_files(vault)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*CLI, "serve", str(vault), "--port", str(port)],
            env=environment(tmp_path, "http://127.0.0.1:9/v1"),
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line == f"Error: cannot serve the dashboard on 127.0.0.1:{port}: the port is in use"
    assert vault_files(vault) == before
    assert not (vault / ".vault-bmad").exists()


@pytest.mark.parametrize("command", ["run", "serve", "check", "retry"])
def test_a_missing_vault_is_one_line(tmp_path: Path, command: str) -> None:
    done = subprocess.run(
        [*CLI, command, str(tmp_path / "nowhere")],
        env=environment(tmp_path, "http://127.0.0.1:9/v1"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr == f"Error: no vault at {tmp_path / 'nowhere'}: no such folder\n"


def test_an_unreachable_dask_scheduler_is_one_line_and_writes_nothing(
    vault: Path, write: WriteNote, tmp_path: Path
) -> None:
    slow_vault(write, 2)
    before = vault_files(vault)
    address = f"dask://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [*CLI, "run", str(vault), "--executor", address],
        env=environment(tmp_path, "http://127.0.0.1:9/v1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(f"Error: cannot reach the Dask scheduler at {address}:")
    assert vault_files(vault) == before
    assert not (vault / ".vault-bmad").exists()


def health_of(url: str) -> dict[str, object]:
    return httpx.get(url + "/api/health", timeout=30).json()  # type: ignore[no-any-return]


def test_serve_shows_a_dead_server_down_and_keeps_its_tasks_queued(
    vault: Path, write: WriteNote, tmp_path: Path
) -> None:
    notes = slow_vault(write, 3)
    dead = f"http://127.0.0.1:{free_port()}/v1"
    env = environment(tmp_path, dead) | {
        "VAULT_BMAD_LLM_GIVE_UP_S": "1",
        "VAULT_BMAD_BACKOFF_BASE_S": "0.05",
        "VAULT_BMAD_RETRIES": "50",
    }
    served = Served(vault, env)
    try:
        wait_until(lambda: bool(health_of(served.url)["agents_out"]), "not taken out")
        time.sleep(1.5)  # past llm_give_up_s: `serve` keeps waiting
        health = health_of(served.url)
        [agent] = health["agents_out"]  # type: ignore[misc]
        assert agent["id"] == "l" and agent["until"] is not None
        assert "could not be reached" in str(agent["why"])
        [endpoint] = health["endpoints"]  # type: ignore[misc]
        assert endpoint["url"] == f"{dead}/chat/completions"
        assert endpoint["down_since"] is not None and endpoint["dead"] is True
        assert {status_of(n) for n in notes} <= {"queued", "running"}
        code, output = served.stop(signal.SIGTERM)
    finally:
        if served.process.poll() is None:
            served.process.kill()
    assert code == 0, output
    assert {status_of(n) for n in notes} == {"todo"}


@pytest.mark.parametrize("command", ["run", "serve"])
def test_ctrl_c_in_a_terminal_stops_quietly(
    vault: Path, write: WriteNote, tmp_path: Path, command: str
) -> None:
    """A terminal's Ctrl-C signals the whole process group, the template workers with it:
    the command stops with its own words, and no worker prints a traceback."""
    notes = slow_vault(write, 3)
    write("Agents/T.md", "---\ntype: agent\n---\nWrites.\n")
    rendered = write("Tasks/Rendered.md", "---\ntype: task\nagent: t\n---\nGo.\n")
    with LoopbackLLM(latency=lambda: 60.0) as server:
        process = subprocess.Popen(
            [*CLI, command, str(vault), *(["--port", str(free_port())] * (command == "serve"))],
            env=environment(tmp_path, server.base_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own process group, as a terminal's job is
        )
        wait_until(lambda: status_of(rendered) == "done", "the template task did not run")
        wait_until(lambda: sum(status_of(n) == "running" for n in notes) == 2, "no start")
        os.killpg(process.pid, signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
    assert process.returncode == (130 if command == "run" else 0), output
    assert {status_of(n) for n in notes} == {"todo"}
