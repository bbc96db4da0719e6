"""Trying again: a rerun releases the tasks its failure blocked; `vault-bmad retry` and the
dashboard's retry retry many at once."""

from __future__ import annotations

import json
import os
from pathlib import Path

import frontmatter
import httpx
from click.testing import CliRunner

from tests.conftest import WriteNote
from tests.test_serve import Served, status_of
from tests.waiting import wait_until
from vault_bmad.cli import main
from vault_bmad.runtimes.loopback_llm import LoopbackLLM


def chain(write: WriteNote) -> list[Path]:
    """Ask fails while the server does; Then and Last wait on it; Other stands alone."""
    write("Agents/L.md", "---\ntype: agent\nruntime: llm\ncapacity: 2\n---\nBe brief.\n")
    write("Agents/T.md", "---\ntype: agent\n---\nOffline.\n")
    return [
        write("Tasks/Ask.md", "---\ntype: task\nagent: l\nretries: 0\n---\nAsk.\n"),
        write("Tasks/Then.md", "---\ntype: task\nagent: t\ndepends_on: ['[[Ask]]']\n---\nThen.\n"),
        write("Tasks/Last.md", "---\ntype: task\nagent: t\ndepends_on: ['[[Then]]']\n---\nLast.\n"),
        write("Tasks/Other.md", "---\ntype: task\nagent: t\n---\nOther.\n"),
    ]


def statuses(notes: list[Path]) -> list[str | None]:
    return [status_of(note) for note in notes]


def test_retry_reruns_the_failed_and_blocked_tasks(vault: Path, write: WriteNote) -> None:
    notes = chain(write)
    with LoopbackLLM(fail_always=True, fail_status=400) as broken:
        first = CliRunner().invoke(
            main, ["run", str(vault)], env={"VAULT_BMAD_LLM_BASE_URL": broken.base_url}
        )
    assert first.exit_code == 1
    assert statuses(notes) == ["failed", "blocked", "blocked", "done"]
    with LoopbackLLM() as fixed:
        env = {"VAULT_BMAD_LLM_BASE_URL": fixed.base_url}
        result = CliRunner().invoke(main, ["retry", str(vault), "--format", "json"], env=env)
        assert fixed.calls == 1
    assert result.exit_code == 0, result.output
    assert "back to todo: Tasks/Ask.md, Tasks/Last.md, Tasks/Then.md" in result.output
    payload = json.loads(result.output[result.output.index("{") :])
    assert (payload["done"], payload["failed"], payload["blocked"]) == (3, 0, 0)
    assert statuses(notes) == ["done", "done", "done", "done"]
    again = CliRunner().invoke(main, ["retry", str(vault), "--failed"])
    assert (again.exit_code, again.output) == (0, "nothing to retry\n")


def test_retry_failed_only_leaves_other_blocked_tasks(vault: Path, write: WriteNote) -> None:
    notes = chain(write)
    write("Tasks/Stuck.md", "---\ntype: task\nagent: t\nstatus: blocked\n---\nStuck.\n")
    with LoopbackLLM(fail_always=True, fail_status=400) as broken:
        env = {"VAULT_BMAD_LLM_BASE_URL": broken.base_url}
        CliRunner().invoke(main, ["run", str(vault)], env=env)
        # The failed task reruns; those it blocked come back with it.
        result = CliRunner().invoke(main, ["retry", str(vault), "--failed"], env=env)
    assert result.exit_code == 1
    assert "back to todo: Tasks/Ask.md\n" in result.output
    assert statuses(notes)[:3] == ["failed", "blocked", "blocked"]


def test_rerunning_a_failed_task_under_serve_releases_what_it_blocked(
    vault: Path, write: WriteNote, tmp_path: Path
) -> None:
    notes = chain(write)
    with LoopbackLLM(fail_always=True, fail_status=400) as broken:
        env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
            "VAULT_BMAD_LLM_BASE_URL": broken.base_url,
            "VAULT_BMAD_DEBOUNCE_MS": "50",
        }
        served = Served(vault, env)
        try:
            wait_until(lambda: statuses(notes)[2] == "blocked", "the chain did not block")
            broken.fail_always = False  # the server is mended
            client = httpx.Client(base_url=served.url, timeout=30)
            page = client.get("/tasks").text
            token = page.split('name="csrf-token" content="')[1].split('"')[0]
            answer = client.post("/api/retry?status=failed", headers={"X-CSRF-Token": token})
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"retried": ["tasks/ask"]}
            wait_until(lambda: statuses(notes) == ["done"] * 4, "the chain did not run")
            last = lambda: served.get("/api/tasks/tasks/last").json()["task"]["status"]  # noqa: E731
            wait_until(lambda: last() == "done", "the API did not follow")
            refused = client.post("/api/retry?status=done", headers={"X-CSRF-Token": token})
            assert refused.status_code == 400
            code, output = served.stop()
        finally:
            if served.process.poll() is None:
                served.process.kill()
    assert code == 0, output
    assert frontmatter.load(vault / "Tasks/Then.md").get("error") is None
