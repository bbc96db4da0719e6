"""A note saved while vault-bmad has its task: an old copy (an editor writing back the text it
had open) gets vault-bmad's state back; a deliberate `status: todo` runs the task again now.
Either way the note and the service agree at once, and the next start runs nothing."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import frontmatter

from tests.conftest import WriteNote
from tests.test_serve import Served, status_of
from tests.waiting import Gate, wait_until
from vault_bmad.config import Settings, load_settings
from vault_bmad.metrics.store import Store
from vault_bmad.runner import VaultRunResult, run_vault
from vault_bmad.runtimes.loopback_llm import LoopbackLLM
from vault_bmad.vault.writer import NoteWriter, is_stale_copy

AGENT = "---\ntype: agent\nruntime: llm\ncapacity: 10\n---\nYou answer.\n"
TASKS = 6


def settings_for(vault: Path, server: LoopbackLLM) -> Settings:
    env = {**os.environ, "VAULT_BMAD_LLM_BASE_URL": server.base_url}
    overrides = {"cache_l1_size": 0, "max_workers": TASKS}
    return load_settings(vault, None, env=env, overrides=overrides)


def write_tasks(write: WriteNote) -> dict[Path, str]:
    """Tasks whose notes' original text each user's editor still has open."""
    write("Agents/L.md", AGENT)
    originals = {}
    for n in range(TASKS):
        text = f"---\ntype: task\nagent: l\nstatus: todo\n---\nQuestion {n}.\n"
        originals[write(f"Tasks/Q{n}.md", text)] = text
    return originals


def run_while(
    vault: Path, server: LoopbackLLM, gate: Gate, during: Callable[[], None]
) -> VaultRunResult:
    """`vault-bmad run` in a thread, with `during` done once every task note says running;
    the server answers only after that, so no task can end before it."""
    results: list[VaultRunResult] = []
    runner = threading.Thread(
        target=lambda: results.append(run_vault(vault, settings_for(vault, server)))
    )
    runner.start()
    notes = sorted((vault / "Tasks").glob("*.md"))
    try:
        wait_until(lambda: all(status_of(n) == "running" for n in notes), "tasks never ran")
        during()
    finally:
        gate.open()
        runner.join(60)
    assert results, "the run did not end"
    return results[0]


def attempts_of(vault: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    with Store(vault / ".vault-bmad" / "state.db") as store:
        for attempt in store.attempts(limit=1000):
            counts[attempt.task_id] = counts.get(attempt.task_id, 0) + 1
    return counts


def test_an_old_copy_saved_while_tasks_run_gets_their_state_back(
    vault: Path, write: WriteNote
) -> None:
    originals = write_tasks(write)
    gate = Gate()
    with LoopbackLLM(latency=gate) as server:

        def editors_save_what_they_had() -> None:
            for note, text in originals.items():
                note.write_text(text)

        result = run_while(vault, server, gate, editors_save_what_they_had)
        assert result.summary.count("done") == TASKS
        for note in originals:
            meta = frontmatter.load(note).metadata
            assert (meta["status"], meta["attempts"], meta["agent_used"]) == ("done", 1, "l")
            assert str(meta["result"]).startswith("[[Outputs/Tasks/Q")
        calls = server.calls
        again = run_vault(vault, settings_for(vault, server))
        assert (again.summary.outcomes, server.calls) == ({}, calls)  # nothing ran again


def test_a_deliberate_todo_while_a_task_runs_runs_it_again_now(
    vault: Path, write: WriteNote
) -> None:
    originals = write_tasks(write)
    chosen = next(iter(originals))
    gate = Gate()
    with LoopbackLLM(latency=gate) as server:

        def user_sets_todo() -> None:
            chosen.write_text(chosen.read_text().replace("status: running", "status: todo"))

        run_while(vault, server, gate, user_sets_todo)
        assert server.calls == TASKS + 1
        assert attempts_of(vault)["tasks/" + chosen.stem.lower()] == 2
        assert all(status_of(note) == "done" for note in originals)
        again = run_vault(vault, settings_for(vault, server))
        assert (again.summary.outcomes, server.calls) == ({}, TASKS + 1)


def test_serve_restores_an_old_copy_saved_after_the_task_ended(
    vault: Path, write: WriteNote, tmp_path: Path
) -> None:
    originals = write_tasks(write)
    with LoopbackLLM() as server:
        env = {
            **os.environ,
            "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
            "VAULT_BMAD_DEBOUNCE_MS": "50",
            "VAULT_BMAD_LLM_BASE_URL": server.base_url,
            "VAULT_BMAD_CACHE_L1_SIZE": "0",
        }
        served = Served(vault, env)
        try:
            notes = list(originals)
            wait_until(lambda: all(status_of(n) == "done" for n in notes), "not done")
            calls = server.calls
            stale, deliberate = notes[0], notes[1]
            stale.write_text(originals[stale])
            deliberate.write_text(deliberate.read_text().replace("status: done", "status: todo"))
            wait_until(lambda: server.calls > calls, "the deliberate todo did not run")
            wait_until(lambda: status_of(stale) == "done", "the old copy was not restored")
            wait_until(lambda: status_of(deliberate) == "done", "the re-run did not end")
            assert frontmatter.load(stale)["attempts"] == 1
            code, output = served.stop(timeout=30)
            assert code == 0, output
            assert server.calls == calls + 1  # the old copy ran nothing, to the end
        finally:
            if served.process.poll() is None:
                served.process.kill()
                served.process.wait()
            if served.process.stdout is not None:
                served.process.stdout.close()
        again = run_vault(vault, settings_for(vault, server))
        assert again.summary.outcomes == {}


def test_what_counts_as_an_old_copy(vault: Path) -> None:
    original = "---\ntype: task\nstatus: todo\n---\nAsk.\n"
    note = vault / "T.md"
    note.write_text(original)
    writer = NoteWriter(vault)
    running = writer.update("T.md", {"status": "running", "attempts": 1, "agent_used": "a"}, None)
    assert is_stale_copy(running.text, original)  # status and the running keys went back
    assert not is_stale_copy(running.text, running.text.replace("running", "todo"))  # status
    assert not is_stale_copy(running.text, original.replace("Ask.", "Ask more."))  # an edit
    note.write_text(original)
    done = writer.update("T.md", {"status": "done", "attempts": 1}, running.text)
    assert done.restored and done.kept == ()
    assert frontmatter.load(note).metadata == {
        "type": "task",
        "status": "done",
        "attempts": 1,
        "agent_used": "a",
    }
