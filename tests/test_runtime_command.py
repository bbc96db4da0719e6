"""The command runtime: off by default, runs real programs when on, kills them on timeout."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path

import pytest

from vault_bmad.config import Settings
from vault_bmad.errors import (
    FailureKind,
    RuntimeRefused,
    RuntimeUnavailable,
    TaskTimeout,
    TemplateRenderError,
    classify,
)
from vault_bmad.runtimes.base import ContextDoc, RunRequest
from vault_bmad.runtimes.command import CommandRuntime

PYTHON = sys.executable
UPPERCASE = (PYTHON, "-c", "import sys; sys.stdout.write(sys.stdin.read().upper())")

BASE = RunRequest(
    task_id="format-notes",
    title="Format the notes",
    runtime="command",
    agent_id="formatter",
    persona="",
    body="Tidy these notes.",
    context=(ContextDoc("Docs/Notes.md", "first note"),),
    dependency_outputs=(),
    template=None,
    template_path=None,
    model=None,
    params=(),
    timeout=20.0,
    command=UPPERCASE,
)


def request(**changes: object) -> RunRequest:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


def test_off_by_default_with_how_to_turn_it_on() -> None:
    runtime = CommandRuntime.from_settings(Settings())
    with pytest.raises(RuntimeRefused) as caught:
        runtime.run(BASE)
    message = str(caught.value)
    assert classify(caught.value).kind is FailureKind.DETERMINISTIC
    assert "format-notes" in message and "is off" in message
    assert "command_enabled = true" in message and "VAULT_BMAD_COMMAND_ENABLED=1" in message


def test_runs_the_program_with_the_rendered_request_on_stdin() -> None:
    runtime = CommandRuntime.from_settings(Settings(command_enabled=True))
    result = runtime.run(BASE)
    assert result.runtime == "command"
    assert result.text.startswith("TIDY THESE NOTES.")
    assert "## CONTEXT: DOCS/NOTES.MD" in result.text and "FIRST NOTE" in result.text


def test_the_tasks_template_shapes_stdin() -> None:
    runtime = CommandRuntime(enabled=True)
    result = runtime.run(request(template="{{ body }}|{{ context[0].text }}", template_path="T"))
    assert result.text == "TIDY THESE NOTES.|FIRST NOTE"
    with pytest.raises(TemplateRenderError, match=r"template Bad\.md"):
        runtime.run(request(template="{{ missing }}", template_path="Bad.md"))


def test_no_shell_is_involved(tmp_path: Path) -> None:
    marker = tmp_path / "should-not-exist"
    argv = (PYTHON, "-c", "import sys; print(sys.argv[1:])", f"; touch {marker}", "$HOME")
    result = CommandRuntime(enabled=True).run(request(command=argv))
    assert result.text.strip() == repr([f"; touch {marker}", "$HOME"])
    assert not marker.exists()


def test_allowlist_limits_the_programs() -> None:
    runtime = CommandRuntime(enabled=True, allowlist=("pandoc", "jq"))
    with pytest.raises(RuntimeRefused) as caught:
        runtime.run(BASE)
    assert repr(PYTHON) in str(caught.value) and "command_allowlist (jq, pandoc)" in str(
        caught.value
    )
    allowed = CommandRuntime(enabled=True, allowlist=(PYTHON,))
    assert allowed.run(BASE).text.startswith("TIDY")


def test_a_task_without_a_command_is_refused() -> None:
    with pytest.raises(RuntimeRefused, match="names no command"):
        CommandRuntime(enabled=True).run(request(command=()))


def test_failures_report_status_and_stderr() -> None:
    argv = (PYTHON, "-c", "import sys; sys.stderr.write('bad input'); sys.exit(3)")
    with pytest.raises(RuntimeUnavailable, match="exited with status 3: bad input") as failed:
        CommandRuntime(enabled=True).run(request(command=argv))
    assert classify(failed.value).kind is FailureKind.TRANSIENT  # its own program: may pass
    with pytest.raises(RuntimeRefused, match="could not start 'no-such-program-x'"):
        CommandRuntime(enabled=True).run(request(command=("no-such-program-x",)))


def test_secrets_stay_out_of_the_programs_environment() -> None:
    environ = {**os.environ, "VAULT_BMAD_LLM_API_KEY": "sk-secret", "VISIBLE": "yes"}
    argv = (
        PYTHON,
        "-c",
        "import os; print(os.environ.get('VAULT_BMAD_LLM_API_KEY'), os.environ.get('VISIBLE'))",
    )
    result = CommandRuntime(enabled=True, environ=environ).run(request(command=argv))
    assert result.text.split() == ["None", "yes"]


def _gone(pid: int) -> bool:
    """True once pid has exited (a zombie awaiting its reaper counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


def test_timeout_kills_the_program_and_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(60)\n"
    )
    runtime = CommandRuntime(enabled=True)
    with pytest.raises(TaskTimeout, match="ran past its 1 s timeout and was killed"):
        runtime.run(request(command=(PYTHON, "-c", script), timeout=1.0))
    parent, child = (int(pid) for pid in pids.read_text().split())
    assert _gone(parent)
    deadline = time.monotonic() + 5  # the orphan is reaped by init, not by us
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(child)
