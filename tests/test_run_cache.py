"""The result cache inside real runs: coalescing, content-addressed keys, failures not kept."""

from __future__ import annotations

import os
from pathlib import Path

import frontmatter

from tests.conftest import WriteNote
from vault_bmad.config import load_settings
from vault_bmad.metrics.store import Store
from vault_bmad.runner import run_vault
from vault_bmad.runtimes.loopback_llm import LoopbackLLM

FAST = {"backoff_base_s": 0.01, "health_cooldown_s": 0.2}


def run(vault: Path, server: LoopbackLLM) -> None:
    env = {**os.environ, "VAULT_BMAD_LLM_BASE_URL": server.base_url}
    run_vault(vault, load_settings(vault, None, env=env, overrides=FAST))


def cache_of(vault: Path, rel_path: str) -> object:
    return frontmatter.load(vault / rel_path)["cache"]


def test_identical_concurrent_llm_tasks_make_one_call(vault: Path, write: WriteNote) -> None:
    write("Agents/L.md", "---\ntype: agent\nruntime: llm\ncapacity: 3\n---\nBe brief.\n")
    for name in ("One", "Two", "Three"):
        write(f"Tasks/{name}.md", "---\ntype: task\nagent: l\n---\nSummarise the brief.\n")
    with LoopbackLLM(latency=lambda: 0.5) as server:
        run(vault, server)
        assert server.calls == 1
    levels = sorted(str(cache_of(vault, f"Tasks/{n}.md")) for n in ("One", "Two", "Three"))
    assert levels.count("miss") == 1  # one computed; the others waited for it or hit L1
    assert all(level in ("miss", "coalesced", "L1") for level in levels)
    outputs = {
        (vault / f"Outputs/Tasks/{n} - result.md").read_text().split("---")[-1]
        for n in ("One", "Two", "Three")
    }
    assert len(outputs) == 1


def test_a_burst_of_duplicates_is_served_from_one_call_and_every_one_ends_done(
    vault: Path, write: WriteNote
) -> None:
    write("Agents/L.md", "---\ntype: agent\nruntime: llm\ncapacity: 9\n---\nBe brief.\n")
    names = [f"Dup{i}" for i in range(9)]  # more than are served at once
    for name in names:
        write(f"Tasks/{name}.md", "---\ntype: task\nagent: l\n---\nSummarise the brief.\n")
    with LoopbackLLM(latency=lambda: 0.3) as server:
        run(vault, server)
        assert server.calls == 1
    notes = [frontmatter.load(vault / f"Tasks/{name}.md") for name in names]
    assert all(note["status"] == "done" for note in notes)
    assert sorted(str(note["cache"]) for note in notes) == ["coalesced"] * 8 + ["miss"]
    with Store(vault / ".vault-bmad" / "state.db") as store:
        attempts = store.attempts()
    (call,) = [a for a in attempts if a.cache == "miss"]
    assert call.call_s is not None  # its worker timed the call: what the predictor learns
    assert 0.3 <= call.call_s <= call.ended_at - call.started_at
    assert all(a.call_s is None for a in attempts if a.cache == "coalesced")  # no call


def test_editing_a_context_note_makes_the_next_run_miss(vault: Path, write: WriteNote) -> None:
    write("Agents/L.md", "---\ntype: agent\nruntime: llm\n---\n")
    context = write("Docs/Brief.md", "The brief, first version.\n")
    task = write("Tasks/Ask.md", "---\ntype: task\nagent: l\ncontext: ['[[Brief]]']\n---\nAsk.\n")
    with LoopbackLLM() as server:
        run(vault, server)
        task.write_text(task.read_text().replace("status: done", "status: todo"))
        run(vault, server)  # same content: served from the disk level, no call
        assert server.calls == 1
        assert cache_of(vault, "Tasks/Ask.md") == "L3"
        context.write_text("The brief, second version.\n")
        task.write_text(task.read_text().replace("status: done", "status: todo"))
        run(vault, server)
        assert server.calls == 2
        assert cache_of(vault, "Tasks/Ask.md") == "miss"
        assert "second version" in server.received[-1].messages[-1]["content"]


def test_failures_are_not_cached(vault: Path, write: WriteNote) -> None:
    write("Agents/L.md", "---\ntype: agent\nruntime: llm\n---\n")
    task = write("Tasks/Ask.md", "---\ntype: task\nagent: l\nretries: 0\n---\nAsk.\n")
    with LoopbackLLM(fail_first=1) as server:
        run(vault, server)
        assert frontmatter.load(task)["status"] == "failed"
        task.write_text(task.read_text().replace("status: failed", "status: todo"))
        run(vault, server)
        assert server.calls == 2
    assert frontmatter.load(task)["status"] == "done"


def test_a_duplicate_waits_aside_and_leaves_the_agents_slot_to_other_work(
    vault: Path, write: WriteNote
) -> None:
    write("Agents/L.md", "---\ntype: agent\nruntime: llm\ncapacity: 2\n---\nBe brief.\n")
    for name in ("Dup1", "Dup2", "Dup3"):
        write(f"Tasks/{name}.md", "---\ntype: task\nagent: l\n---\nSummarise the brief.\n")
    write("Tasks/Other.md", "---\ntype: task\nagent: l\npriority: low\n---\nSomething else.\n")
    with LoopbackLLM(latency=lambda: 0.4) as server:
        run(vault, server)
        assert server.calls == 2  # one per distinct request
    with Store(vault / ".vault-bmad" / "state.db") as store:
        attempts = {a.task_id: a for a in store.attempts()}
    leader = next(a for a in attempts.values() if a.task_id != "tasks/other" and a.cache == "miss")
    other = attempts["tasks/other"]
    # The low-priority task took the second slot while the leader ran: no duplicate sat in it.
    assert other.started_at < leader.ended_at
    twins = [a for a in attempts.values() if a.task_id.startswith("tasks/dup") and a is not leader]
    # Held aside, then given the leader's answer as it came: before its own note was written.
    assert [a.cache for a in twins] == ["coalesced", "coalesced"]
    assert all(a.attempt == 1 and a.started_at > other.started_at for a in twins)
    assert all(leader.started_at + 0.4 <= a.started_at <= leader.ended_at for a in twins)
    for name in ("Dup1", "Dup2", "Dup3"):
        note = frontmatter.load(vault / f"Tasks/{name}.md")
        assert (note["status"], note["attempts"]) == ("done", 1)
