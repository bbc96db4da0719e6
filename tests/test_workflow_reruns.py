"""A workflow run under `serve`, through a real service (its store, watcher and engine) and
the dashboard: run again with other `conditions:`, and its guidance step's page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import WriteNote
from tests.waiting import wait_until
from vault_bmad.config import load_settings
from vault_bmad.service import Service
from vault_bmad.web.app import create_app

WORKFLOW = """\
workflow:
  id: tiny
  name: Tiny
  sequence:
    - agent: writer
      creates: draft.md
    - agent: writer
      creates: polish.md
      requires: draft.md
      condition: wants_polish
    - step: wrap_up
      action: tell_the_team
      notes: "Tell the team."
"""
RUN = "---\ntype: task\nstatus: todo\nworkflow: tiny\nconditions: [{conditions}]\n---\nWrite.\n"
LEFT_OUT = "its condition wants_polish is not in the run's `conditions:`"


@pytest.fixture
def served(vault: Path, write: WriteNote) -> Iterator[Service]:
    write("Agents/Writer.md", "---\ntype: agent\n---\nWrites.\n")
    write("BMAD/workflows/tiny.yaml", WORKFLOW)
    write("Tasks/Go.md", RUN.format(conditions="wants_polish"))
    overrides = {"port": 0, "debounce_ms": 50}
    service = Service(vault, load_settings(vault, None, overrides=overrides))
    service.start()
    try:
        yield service
    finally:
        service.stop()


def status(service: Service, task_id: str) -> str | None:
    view = service.snapshot().task(task_id)
    return str(view.status) if view else None


def test_a_step_the_new_conditions_leave_out_ends_skipped(
    served: Service, vault: Path, write: WriteNote
) -> None:
    wait_until(lambda: status(served, "tasks/go") == "done")
    assert status(served, "tasks/go/polish") == "done"
    write("Tasks/Go.md", RUN.format(conditions=""))  # the user runs it again, without polish
    # The engine skips polish as it takes the edit (the run waits again then), and the run
    # ends once its summary is written: the snapshot the dashboard reads shows both.
    polish_left_out = ("skipped", "done")
    wait_until(
        lambda: (status(served, "tasks/go/polish"), status(served, "tasks/go")) == polish_left_out
    )
    polish = served.snapshot().task("tasks/go/polish")
    assert polish is not None and (polish.status, polish.error) == ("skipped", LEFT_OUT)
    assert status(served, "tasks/go/draft") == "done"
    assert f"- polish: skipped, {LEFT_OUT}" in summary(vault)
    served.store.flush()  # what the engine recorded is committed
    stored = served.store.task("tasks/go/polish")
    assert stored is not None and (stored.status, stored.error) == ("skipped", LEFT_OUT)
    page = create_app(served).test_client().get("/api/tasks/tasks/go/polish").get_json()
    assert (page["task"]["status"], page["task"]["error"]) == ("skipped", LEFT_OUT)


def summary(vault: Path) -> str:
    note = vault / "Outputs/Tasks/Go - result.md"
    return note.read_text() if note.exists() else ""


def test_a_guidance_steps_page_says_no_agent_runs_it(served: Service) -> None:
    wait_until(lambda: status(served, "tasks/go") == "done")
    client = create_app(served).test_client()
    guidance = client.get("/tasks/tasks/go/wrap_up").get_data(as_text=True)
    assert "chosen by expertise and load" not in guidance
    assert "none: a guidance step, its notes are for you" in guidance
    run = client.get("/tasks/tasks/go").get_data(as_text=True)
    assert "none: the workflow run, which sums up its steps" in run
    draft = client.get("/tasks/tasks/go/draft").get_data(as_text=True)
    assert '<dd data-field="agent">writer</dd>' in draft
