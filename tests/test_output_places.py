"""Outputs go only where they belong: never into hidden folders or files that are not notes,
never onto a task, agent, workflow or template note, never where another task's goes."""

from __future__ import annotations

from pathlib import Path

import frontmatter
import pytest

from tests.conftest import WriteNote, check_json, run_json
from vault_bmad.errors import VaultPathError
from vault_bmad.vault.writer import NoteWriter

AGENT = "---\ntype: agent\n---\nI write.\n"


@pytest.mark.parametrize(
    ("output", "written"),
    [
        (".obsidian/plugins/evil/main.js", ".obsidian/plugins/evil/main.js"),
        (".obsidian/plugins/evil/notes", ".obsidian/plugins/evil/notes.md"),
        (".git/hooks/post-commit", ".git/hooks/post-commit.md"),
        (".trash/Old.md", ".trash/Old.md"),
        (".vault-bmad/lock", ".vault-bmad/lock.md"),
        ("Docs/.hidden.md", "Docs/.hidden.md"),
        ("vault-bmad.toml", "vault-bmad.toml"),
        ("Docs/plugin.js", "Docs/plugin.js"),
    ],
)
def test_outputs_never_go_into_hidden_folders_or_files_that_are_not_notes(
    vault: Path, write: WriteNote, output: str, written: str
) -> None:
    write("Agents/A.md", AGENT)
    write("Tasks/Out.md", f"---\ntype: task\nagent: a\noutput: {output}\n---\nGo.\n")
    code, problems = check_json(vault)
    assert code == 1
    assert [(p["path"], p["line"]) for p in problems] == [("Tasks/Out.md", 4)]
    assert str(problems[0]["message"]).startswith(f"output {written} is ")
    code, outcome = run_json(vault)
    assert (code, outcome["invalid"], outcome["done"]) == (1, ["Tasks/Out.md"], 0)
    assert not (vault / written).exists()
    assert frontmatter.load(vault / "Tasks/Out.md")["status"] == "invalid"


def test_the_writer_itself_refuses_hidden_outputs(vault: Path) -> None:
    with pytest.raises(VaultPathError, match="hidden"):
        NoteWriter(vault).write_output(".obsidian/snippets/x.css.md", "body", "Tasks/T.md")
    assert not (vault / ".obsidian").exists()


def test_a_workflow_step_may_not_create_into_a_hidden_folder(vault: Path, write: WriteNote) -> None:
    write("Agents/A.md", AGENT)
    write(
        "Workflows/Flow.md",
        "---\ntype: workflow\nsteps:\n  - id: s\n    agent: a\n    creates: .obsidian/s.md\n---\n",
    )
    code, problems = check_json(vault)
    assert code == 1
    assert problems[0]["path"] == "Workflows/Flow.md"
    assert "creates .obsidian/s.md, which is hidden" in str(problems[0]["message"])


@pytest.mark.parametrize(
    "target", ["Agents/A.md", "Templates/T.md", "Workflows/W.md", "Tasks/B.md"]
)
def test_outputs_never_go_onto_a_role_note(vault: Path, write: WriteNote, target: str) -> None:
    write("Agents/A.md", AGENT)
    write("Templates/T.md", "---\ntype: template\n---\n{{ body }}\n")
    write("Workflows/W.md", "---\ntype: workflow\nsteps:\n  - id: s\n    agent: a\n---\n")
    write("Tasks/B.md", "---\ntype: task\nagent: a\n---\nB.\n")
    write("Tasks/Out.md", f"---\ntype: task\nagent: a\noutput: {target.lower()}\n---\nGo.\n")
    role = frontmatter.load(vault / target)["type"]
    code, problems = check_json(vault)
    assert code == 1
    mine = [p for p in problems if p["path"] == "Tasks/Out.md"]
    assert len(mine) == 1
    assert f"output {target.lower()} is the {role} note {target}" in str(mine[0]["message"])
    code, outcome = run_json(vault)
    assert "Tasks/Out.md" in outcome["invalid"]  # type: ignore[operator]
    after = frontmatter.load(vault / target)
    assert "generated_by" not in after.metadata and "Go." not in after.content
    assert not list(vault.rglob("* (2).md"))  # nor beside it


def test_check_reports_two_tasks_sharing_an_output(vault: Path, write: WriteNote) -> None:
    write("Agents/A.md", AGENT)
    write("Tasks/One.md", "---\ntype: task\nagent: a\noutput: Docs/Plan.md\n---\nOne.\n")
    write("Work/Two.md", "---\ntype: task\nagent: a\noutput: docs/plan\n---\nTwo.\n")
    code, problems = check_json(vault)
    assert code == 1
    assert {(p["path"], p["line"]) for p in problems} == {("Tasks/One.md", 4), ("Work/Two.md", 4)}
    assert "is also written by Work/Two.md" in str(problems[0]["message"])
    code, outcome = run_json(vault)
    assert (code, sorted(outcome["invalid"])) == (1, ["Tasks/One.md", "Work/Two.md"])  # type: ignore[type-var]
    assert not (vault / "Docs/Plan.md").exists()


def test_same_named_tasks_in_two_folders_write_two_outputs(vault: Path, write: WriteNote) -> None:
    write("Agents/A.md", AGENT)
    write("Tasks/Plan.md", "---\ntype: task\nagent: a\n---\nPlan the tasks.\n")
    write("Work/Plan.md", "---\ntype: task\nagent: a\n---\nPlan the work.\n")
    assert check_json(vault) == (0, [])
    code, outcome = run_json(vault)
    assert (code, outcome["done"]) == (0, 2)
    tasks = frontmatter.load(vault / "Outputs/Tasks/Plan - result.md")
    work = frontmatter.load(vault / "Outputs/Work/Plan - result.md")
    assert "Plan the tasks." in tasks.content and "Plan the work." in work.content


def test_runs_of_one_workflow_may_share_a_creates_but_a_task_may_not(
    vault: Path, write: WriteNote
) -> None:
    write("Agents/A.md", AGENT)
    write(
        "Workflows/Flow.md",
        "---\ntype: workflow\nsteps:\n  - id: prd\n    agent: a\n    creates: Docs/PRD.md\n---\n",
    )
    write("Tasks/One.md", "---\ntype: task\nworkflow: flow\n---\nOne.\n")
    write("Tasks/Two.md", "---\ntype: task\nworkflow: flow\n---\nTwo.\n")
    assert check_json(vault) == (0, [])  # the second run's PRD goes beside the first's
    write("Tasks/Mine.md", "---\ntype: task\nagent: a\noutput: Docs/PRD.md\n---\nMine.\n")
    code, problems = check_json(vault)
    assert code == 1
    assert {p["path"] for p in problems} == {"Tasks/One.md", "Tasks/Two.md", "Tasks/Mine.md"}
    [mine] = [p for p in problems if p["path"] == "Tasks/Mine.md"]
    assert "is also written by Tasks/One.md (step 'prd'), Tasks/Two.md (step 'prd')" in str(
        mine["message"]
    )


def test_the_output_folder_setting_places_every_default_output(
    vault: Path, write: WriteNote
) -> None:
    write("vault-bmad.toml", 'output_folder = "Results/AI"\n')
    write("Agents/A.md", AGENT)
    write(
        "Workflows/Flow.md",
        "---\ntype: workflow\nsteps:\n  - id: brief\n    agent: a\n---\n",
    )
    write("Tasks/Plan.md", "---\ntype: task\nagent: a\n---\nPlan.\n")
    write("Tasks/Go.md", "---\ntype: task\nworkflow: flow\n---\nGo.\n")
    mine = "---\ntype: task\nagent: a\noutput: Results/AI/Tasks/Plan - result\n---\n"
    write("Tasks/Mine.md", mine)
    code, problems = check_json(vault)  # the check knows where Plan's output goes
    assert code == 1 and [p["path"] for p in problems] == ["Tasks/Mine.md", "Tasks/Plan.md"]
    assert "output Results/AI/Tasks/Plan - result.md is also written by" in str(
        problems[0]["message"]
    )
    (vault / "Tasks/Mine.md").unlink()
    code, outcome = run_json(vault)
    assert (code, outcome["done"]) == (0, 3), outcome
    tasks: dict[str, dict[str, str]] = outcome["tasks"]  # type: ignore[assignment]
    outputs = {task_id: task["output"] for task_id, task in tasks.items()}
    assert outputs == {
        "tasks/plan": "Results/AI/Tasks/Plan - result.md",
        "tasks/go/brief": "Results/AI/Tasks/Go/brief.md",
        "tasks/go": "Results/AI/Tasks/Go - result.md",
    }
    assert all((vault / path).is_file() for path in outputs.values())
    assert not (vault / "Outputs").exists()
    summary = (vault / "Results/AI/Tasks/Go - result.md").read_text()
    assert "[[Results/AI/Tasks/Go/brief]]" in summary
