"""Why is it waiting? Each queued task on a real service says what holds it: a dependency,
its agent being out (until when), the agent's capacity, or a retry's backoff; the JSON API
and the Tasks page show it."""

from __future__ import annotations

import time
from pathlib import Path

from tests.conftest import WriteNote
from tests.waiting import wait_until
from vault_bmad.config import load_settings
from vault_bmad.runtimes.loopback_llm import LoopbackLLM
from vault_bmad.service import Service
from vault_bmad.web.app import create_app


def test_a_queued_task_waits_for_capacity_or_a_dependency(vault: Path, write: WriteNote) -> None:
    write("Agents/Slow.md", "---\ntype: agent\nruntime: llm\ncapacity: 1\n---\nThinks.\n")
    write("Tasks/First.md", "---\ntype: task\nagent: slow\ntimeout: 60\n---\nOne.\n")
    write("Tasks/Second.md", "---\ntype: task\nagent: slow\ntimeout: 60\n---\nTwo.\n")
    write(
        "Tasks/After.md",
        '---\ntype: task\nagent: slow\ndepends_on: ["[[First]]"]\n---\nThree.\n',
    )
    with LoopbackLLM(latency=lambda: 4.0) as llm:
        overrides = {"port": 0, "debounce_ms": 50, "llm_base_url": llm.base_url}
        service = Service(vault, load_settings(vault, None, overrides=overrides))
        service.start()
        try:
            client = create_app(service).test_client()

            def waits() -> dict[str, str | None]:
                tasks = client.get("/api/tasks").get_json()["tasks"]
                return {t["id"]: t["waiting_for"] for t in tasks}

            wait_until(lambda: sum(1 for w in waits().values() if w) == 2)
            found = waits()
            running = "tasks/first" if found["tasks/first"] is None else "tasks/second"
            other = "tasks/second" if running == "tasks/first" else "tasks/first"
            assert found[running] is None  # it runs: it waits for nothing
            assert found[other] == "capacity: its agents are full (slow 1/1)"
            after = "dependency: waits for tasks/first"
            assert found["tasks/after"] == after
            page = client.get("/tasks/tasks/after").data.decode()
            assert after in page
        finally:
            service.stop()


def test_a_retry_waits_out_its_backoff_then_its_agent_out(vault: Path, write: WriteNote) -> None:
    write("Agents/Flaky.md", "---\ntype: agent\nruntime: llm\n---\nBreaks.\n")
    write("Tasks/Shaky.md", "---\ntype: task\nagent: flaky\nretries: 5\n---\nFour.\n")
    with LoopbackLLM(fail_first=100, fail_status=503) as llm:
        overrides = {
            "port": 0,
            "debounce_ms": 50,
            "llm_base_url": llm.base_url,
            "backoff_base_s": 2.0,
            "health_cooldown_s": 60.0,
        }
        service = Service(vault, load_settings(vault, None, overrides=overrides))
        service.start()
        try:
            client = create_app(service).test_client()

            def shaky() -> dict[str, object]:
                task: dict[str, object] = client.get("/api/tasks/tasks/shaky").get_json()["task"]
                return task

            seen: dict[str, object] = {}

            def shaky_waits_for(reason: str) -> bool:
                """Whether the task waits for `reason`; `seen` keeps that answer and when."""
                seen.update(shaky(), asked=time.time())
                return str(seen["waiting_for"]).startswith(reason)

            wait_until(lambda: shaky_waits_for("retry backoff until"))
            until, asked = seen["waiting_until"], seen["asked"]
            assert isinstance(until, float) and isinstance(asked, float)
            assert until > asked - 1
            # two transient failures take the agent out; once the backoff ends, the task
            # waits for the agent's probe, a minute after it was taken out
            wait_until(lambda: shaky_waits_for("agent out: flaky until"))
            until, asked = seen["waiting_until"], seen["asked"]
            assert isinstance(until, float) and isinstance(asked, float)
            assert 30 < until - asked <= 61
            assert [c.state for c in service.store.agent_changes()] == ["out"]
        finally:
            service.stop()
