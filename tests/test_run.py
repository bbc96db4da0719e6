"""`vault-bmad run` end to end: real vaults, real SQLite, a real LLM server on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import frontmatter
import pytest
from click.testing import CliRunner

from tests.conftest import WriteNote
from tests.waiting import WAIT_S, Gate, wait_until
from vault_bmad.cli import main
from vault_bmad.config import Settings, load_settings
from vault_bmad.metrics.records import Attempt
from vault_bmad.metrics.store import Store
from vault_bmad.runner import EXIT_NEEDS_INPUT, run_vault
from vault_bmad.runtimes.loopback_llm import LoopbackLLM

FAST = {
    "backoff_base_s": 0.01,
    "backoff_max_s": 0.05,
    "llm_timeout_s": 5,
    "health_cooldown_s": 0.2,
}


def settings_for(vault: Path, server: LoopbackLLM | None = None, **overrides: object) -> Settings:
    env = dict(os.environ)
    if server:
        env["VAULT_BMAD_LLM_BASE_URL"] = server.base_url
    return load_settings(vault, None, env=env, overrides={**FAST, **overrides})


def meta(vault: Path, rel_path: str) -> dict[str, object]:
    return dict(frontmatter.load(vault / rel_path).metadata)


def attempts(vault: Path) -> list[dict[str, object]]:
    with Store(vault / ".vault-bmad" / "state.db") as store:
        return [vars(a) | {"started_at": a.started_at} for a in store.attempts(limit=10_000)]


def test_sample_vault_runs_in_dependency_order(sample_vault: Path) -> None:
    result = run_vault(sample_vault, settings_for(sample_vault))
    assert result.summary.count("done") == 12
    assert result.invalid == ()
    rows = {row["task_id"]: row for row in attempts(sample_vault)}
    deps = {
        "tasks/write-the-prd": ["tasks/research-the-market"],
        "tasks/design-the-architecture": ["tasks/write-the-prd"],
        "tasks/plan-the-first-sprint": [
            "tasks/design-the-architecture",
            "tasks/write-the-test-strategy",
        ],
        "tasks/kick-off-greenfield/prd": ["tasks/kick-off-greenfield/brief"],
    }
    for task_id, needs in deps.items():
        for need in needs:
            assert rows[task_id]["started_at"] >= rows[need]["ended_at"], (task_id, need)
    # the run is its steps' work: it has no attempt of its own, and its times span theirs
    run = result.summary.outcomes["tasks/kick-off-greenfield"]
    assert "tasks/kick-off-greenfield" not in rows
    steps = [
        row for task_id, row in rows.items() if task_id.startswith("tasks/kick-off-greenfield/")
    ]
    assert run.started_at == min(row["started_at"] for row in steps)
    assert run.completed_at is not None
    assert run.completed_at >= max(row["ended_at"] for row in steps)
    note = meta(sample_vault, "Tasks/Design the architecture.md")
    assert note["status"] == "done"
    assert note["agent_used"] == "architect"  # chosen by expertise: the note names no agent
    assert note["result"] == "[[Docs/Architecture]]"
    output = frontmatter.load(sample_vault / "Docs/Architecture.md")
    assert output["source_task"] == "[[Tasks/Design the architecture]]"
    assert output["generated_by"] == "vault-bmad"
    assert "You are **Winston**" in output.content  # the persona went through the template
    assert "## Docs/PRD.md" in output.content.replace("### ", "## ")  # a dependency's output
    report = frontmatter.load(sample_vault / str(result.report))
    assert report["type"] == "report"
    assert "[[Tasks/Write the PRD]]" in report.content


def test_second_run_does_nothing_and_todo_reruns(sample_vault: Path) -> None:
    run_vault(sample_vault, settings_for(sample_vault))
    before = (sample_vault / "Docs/PRD.md").read_text()
    again = run_vault(sample_vault, settings_for(sample_vault))
    waiting = {task: outcome.status for task, outcome in again.summary.outcomes.items()}
    assert waiting == {"tasks/describe-the-first-user": "needs-input"}  # told on each run
    assert (sample_vault / "Docs/PRD.md").read_text() == before
    note = sample_vault / "Tasks/Write the test strategy.md"
    note.write_text(note.read_text().replace("status: done", "status: todo"))
    third = run_vault(sample_vault, settings_for(sample_vault))
    ran = [t for t, o in third.summary.outcomes.items() if o.status != "needs-input"]
    assert ran == ["tasks/write-the-test-strategy"]


def test_priority_orders_ready_tasks(vault: Path, write: WriteNote) -> None:
    write("Agents/A.md", "---\ntype: agent\ncapacity: 1\n---\n")
    for name, priority in [("m", "minimal"), ("c", "critical"), ("n", "normal"), ("h", "high")]:
        write(f"Tasks/{name}.md", f"---\ntype: task\nagent: a\npriority: {priority}\n---\n{name}\n")
    run_vault(vault, settings_for(vault, max_workers=1, max_concurrent_agents=1))
    order = [r["task_id"] for r in sorted(attempts(vault), key=lambda r: r["started_at"])]
    assert order == ["tasks/c", "tasks/h", "tasks/n", "tasks/m"]


def test_failed_dependency_blocks_dependents(vault: Path, write: WriteNote) -> None:
    write("Agents/Cmd.md", "---\ntype: agent\nruntime: command\ncommand: [echo, hi]\n---\n")
    write("Agents/T.md", "---\ntype: agent\n---\n")
    write("Tasks/First.md", "---\ntype: task\nagent: cmd\nretries: 0\n---\n")
    write("Tasks/Second.md", "---\ntype: task\nagent: t\ndepends_on: ['[[First]]']\n---\n")
    write("Tasks/Third.md", "---\ntype: task\nagent: t\ndepends_on: ['[[Second]]']\n---\n")
    result = run_vault(vault, settings_for(vault))
    first = meta(vault, "Tasks/First.md")
    assert first["status"] == "failed"
    assert "command runtime, which is off" in str(first["error"])
    assert "command_enabled" in str(first["error"])  # says how to turn it on
    assert meta(vault, "Tasks/Second.md")["status"] == "blocked"
    assert "tasks/first" in str(meta(vault, "Tasks/Third.md")["error"])
    assert result.summary.count("blocked") == 2


def test_retries_then_done(vault: Path, write: WriteNote) -> None:
    write("Agents/L.md", "---\ntype: agent\nruntime: llm\nmodel: tiny\n---\nBe brief.\n")
    write("Tasks/Ask.md", "---\ntype: task\nagent: l\nretries: 3\n---\nSay hi.\n")
    with LoopbackLLM(fail_first=2) as server:
        run_vault(vault, settings_for(vault, server))
        assert server.calls == 3
        system, user = server.received[-1].messages
    note = meta(vault, "Tasks/Ask.md")
    assert (note["status"], note["attempts"]) == ("done", 3)
    assert system == {"role": "system", "content": "Be brief."}
    assert "Say hi." in user["content"]
    statuses = [r["status"] for r in attempts(vault)]
    assert statuses == ["failed", "failed", "done"]


def test_llm_down_fails_with_clear_error(vault: Path, write: WriteNote) -> None:
    write("Agents/L.md", "---\ntype: agent\nruntime: llm\n---\n")
    write("Tasks/Ask.md", "---\ntype: task\nagent: l\nretries: 1\n---\nHi\n")
    with LoopbackLLM() as server:
        url = server.base_url  # the server stops at the end of the block: nothing listens
    env = {**os.environ, "VAULT_BMAD_LLM_BASE_URL": url}
    settings = load_settings(vault, None, env=env, overrides=FAST)
    run_vault(vault, settings)
    note = meta(vault, "Tasks/Ask.md")
    assert note["status"] == "failed"
    assert note["attempts"] == 2
    assert url.split("//")[1].split("/")[0] in str(note["error"])  # names the server


def test_timeout_fails_the_attempt(vault: Path, write: WriteNote) -> None:
    write("Agents/L.md", "---\ntype: agent\nruntime: llm\n---\n")
    write("Tasks/Slow.md", "---\ntype: task\nagent: l\ntimeout: 0.3\nretries: 1\n---\nHi\n")
    with LoopbackLLM(hang=True) as server:
        run_vault(vault, settings_for(vault, server))
    note = meta(vault, "Tasks/Slow.md")
    assert note["status"] == "failed"
    assert "no answer within 0.3 s" in str(note["error"])
    assert [r["status"] for r in attempts(vault)] == ["timeout", "timeout"]


def test_failing_agent_is_taken_out_and_work_finishes_elsewhere(
    vault: Path, write: WriteNote
) -> None:
    write("Agents/Flaky.md", "---\ntype: agent\nruntime: llm\nexpertise: [writing]\n---\n")
    write("Agents/Steady.md", "---\ntype: agent\nexpertise: [writing]\n---\n")
    for number in range(12):
        write(f"Tasks/Write {number}.md", f"---\ntype: task\nretries: 5\n---\nwriting {number}\n")
    with LoopbackLLM(fail_always=True) as server:
        result = run_vault(vault, settings_for(vault, server, health_cooldown_s=60))
    assert result.summary.count("done") == 12
    rows = attempts(vault)
    flaky = [r for r in rows if r["agent"] == "flaky"]
    assert flaky and all(r["status"] == "failed" for r in flaky)
    assert len(flaky) < 8  # taken out after a few failures, not tried for every task
    assert {meta(vault, f"Tasks/Write {n}.md")["agent_used"] for n in range(12)} == {"steady"}


def test_user_edit_during_run_is_kept(vault: Path, write: WriteNote) -> None:
    write("Agents/L.md", "---\ntype: agent\nruntime: llm\n---\n")
    note = write("Tasks/Ask.md", "---\ntype: task\nagent: l\n# my comment\n---\nAsk.\n")
    gate = Gate()
    with LoopbackLLM(latency=gate) as server:
        runner = threading.Thread(target=run_vault, args=(vault, settings_for(vault, server)))
        runner.start()
        try:
            wait_until(lambda: "status: running" in note.read_text(), "the task never ran")
            note.write_text(note.read_text().replace("Ask.", "Ask, and I edited this."))
        finally:
            gate.open()
            runner.join(WAIT_S)
        assert not runner.is_alive(), "the run did not end"
    text = note.read_text()
    assert "Ask, and I edited this." in text
    assert "# my comment" in text
    assert "status: done" in text


def test_invalid_note_is_marked_and_run_exits_1(vault: Path, write: WriteNote) -> None:
    write("Agents/A.md", "---\ntype: agent\n---\n")
    write("Tasks/Good.md", "---\ntype: task\n---\nok\n")
    write("Tasks/Bad.md", "---\ntype: task\npriority: whenever\n---\nbad\n")
    result = CliRunner().invoke(main, ["run", str(vault), "--format", "json"])
    assert result.exit_code == 1
    payload = json.loads(result.output)
    assert payload["done"] == 1
    assert payload["invalid"] == ["Tasks/Bad.md"]
    bad = meta(vault, "Tasks/Bad.md")
    assert bad["status"] == "invalid"
    assert str(bad["error"]).startswith("priority: must be one of")


def test_cli_plain_lines_when_not_a_terminal(sample_vault: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(sample_vault), "--workers", "2"])
    assert result.exit_code == EXIT_NEEDS_INPUT, result.output
    assert "12 done, 0 failed, 0 blocked, 1 skipped, 1 needs-input, 0 invalid" in result.output
    assert "started tasks/research-the-market" in result.output


@pytest.mark.slow
def test_crash_loses_nothing(vault: Path, write: WriteNote, tmp_path: Path) -> None:
    write("Agents/L.md", "---\ntype: agent\nruntime: llm\ncapacity: 2\n---\n")
    write("Tasks/Quick.md", "---\ntype: task\nagent: l\npriority: critical\n---\nquick\n")
    write("Tasks/Long.md", "---\ntype: task\nagent: l\ntimeout: 60\n---\nlong\n")
    write("Tasks/After.md", "---\ntype: task\nagent: l\ndepends_on: ['[[Long]]']\n---\nafter\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    long_note = vault / "Tasks/Long.md"
    with LoopbackLLM(latency=lambda: 30.0) as slow:
        env["VAULT_BMAD_LLM_BASE_URL"] = slow.base_url
        process = subprocess.Popen(
            [sys.executable, "-m", "vault_bmad.cli", "run", str(vault)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: "status: running" in long_note.read_text(), "the task never ran")
        process.send_signal(signal.SIGKILL)
        process.wait(WAIT_S)
    with LoopbackLLM() as fast:
        env["VAULT_BMAD_LLM_BASE_URL"] = fast.base_url
        rerun = subprocess.run(
            [sys.executable, "-m", "vault_bmad.cli", "run", str(vault), "--format", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert rerun.returncode == 0, rerun.stderr
    for name in ("Quick", "Long", "After"):
        assert meta(vault, f"Tasks/{name}.md")["status"] == "done", name
    with Store(vault / ".vault-bmad" / "state.db") as store:
        assert store.tasks("running") == []
        assert {t.task_id for t in store.tasks("done")} >= {"tasks/long", "tasks/after"}


def test_a_broken_template_fails_at_once_without_retries(vault: Path, write: WriteNote) -> None:
    write("Agents/A.md", "---\ntype: agent\n---\n")
    write("Templates/Bad.md", "---\ntype: template\n---\n{% for x in %}\n")
    write("Tasks/T.md", "---\ntype: task\nagent: a\nretries: 3\ntemplate: '[[Bad]]'\n---\nx\n")
    run_vault(vault, settings_for(vault))
    note = meta(vault, "Tasks/T.md")
    assert (note["status"], note["attempts"]) == ("failed", 1)
    assert "Templates/Bad.md" in str(note["error"])


def test_agent_choice_learns_speeds_from_earlier_runs(vault: Path, write: WriteNote) -> None:
    for name in ("Quick", "Slow"):
        write(
            f"Agents/{name}.md",
            f"---\ntype: agent\nexpertise: [testing]\ncapacity: 4\n---\n{name}.\n",
        )
    for i in range(4):
        write(f"Tasks/T{i}.md", f"---\ntype: task\ntags: [testing]\n---\nTest part {i}.\n")
    history = [
        Attempt("old", agent, "template", 1, "done", 0.0, 100.0, 100.0 + seconds, cache=cache)
        for agent, seconds, cache in [("quick", 1.0, "miss"), ("slow", 5.0, "miss")] * 3
        + [("slow", 0.001, "L1")] * 20  # cache hits: no measure of the agent
    ]
    with Store(vault / ".vault-bmad" / "state.db") as store:
        store.record_attempts(history)
    run_vault(vault, settings_for(vault))
    assert {meta(vault, f"Tasks/T{i}.md")["agent_used"] for i in range(4)} == {"quick"}
