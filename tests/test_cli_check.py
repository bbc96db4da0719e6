"""`vault-bmad check` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import WriteNote
from vault_bmad.cli import main


def test_check_clean_sample_vault(sample_vault: Path) -> None:
    result = CliRunner().invoke(main, ["check", str(sample_vault)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("0 problems")


def test_check_json_shape_and_exit_code(vault: Path, write: WriteNote) -> None:
    write("Agents/A.md", "---\ntype: agent\n---\n")
    write("Tasks/Good.md", "---\ntype: task\nagent: a\n---\n")
    write("Tasks/Sub/Bad.md", "---\ntype: task\nagent: nobody\n---\n")
    write("Context.md", "plain")
    result = CliRunner().invoke(main, ["check", str(vault), "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert {k: report[k] for k in ("notes", "agents", "workflows", "tasks")} == {
        "notes": 4,
        "agents": 1,
        "workflows": 0,
        "tasks": 1,
    }
    assert report["problems"] == [
        {
            "path": "Tasks/Sub/Bad.md",
            "line": 3,
            "message": "unknown agent nobody (known: a)",
            "severity": "error",
        }
    ]


def test_check_text_lists_each_problem(vault: Path, write: WriteNote) -> None:
    write("Tasks/Bad.md", "---\ntype: task\npriority: asap\n---\n")
    result = CliRunner().invoke(main, ["check", str(vault)])
    assert result.exit_code == 1
    first, summary = result.output.strip().splitlines()
    assert first.startswith("Tasks/Bad.md:3: priority: must be one of")
    assert summary == "1 notes, 0 agents, 0 workflows, 0 tasks, 1 problem"


def test_check_missing_vault_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["check", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert result.output == f"Error: no vault at {tmp_path / 'nope'}: no such folder\n"


def test_a_broken_config_is_one_line_naming_each_problem(vault: Path, tmp_path: Path) -> None:
    config = tmp_path / "mine.toml"
    config.write_text("retries = -1\nwokrers = 3\n")
    result = CliRunner().invoke(main, ["check", str(vault), "--config", str(config)])
    assert result.exit_code == 2  # a setup error: nothing was checked
    [line] = result.output.splitlines()
    assert line.startswith("Error: ") and "retries" in line and "wokrers" in line
    assert str(config) in line


def test_check_reports_a_template_link_that_is_no_template(vault: Path, write: WriteNote) -> None:
    write("Agents/A.md", "---\ntype: agent\n---\nWrites.\n")
    write("Templates/Bad.md", "---\ntype: template\n---\n{{ body }}\n")
    write("Tasks/Bad.md", "---\ntype: task\nagent: a\n---\nA task named Bad.\n")
    write("Docs/Plain.md", "Just a note.\n")
    write(
        "Workflows/Flow.md",
        "---\ntype: workflow\nsteps:\n  - id: draft\n    agent: a\n    template: '[[A]]'\n---\n",
    )
    tasks = {
        "Near": "[[Bad]]",  # Obsidian takes the note beside the link: the task Tasks/Bad.md
        "Agent": "[[A]]",
        "Wf": "[[Flow]]",
        "Plain": "Docs/Plain",
        "Gone": "[[Nowhere]]",
        "Right": "[[Templates/Bad]]",
    }
    for name, link in tasks.items():
        write(f"Tasks/{name}.md", f"---\ntype: task\nagent: a\ntemplate: '{link}'\n---\nGo.\n")
    write("Tasks/Run.md", "---\ntype: task\nworkflow: flow\n---\nGo.\n")
    result = CliRunner().invoke(main, ["check", str(vault), "--format", "json"])
    assert result.exit_code == 1
    found = {(p["path"], p["line"]): p["message"] for p in json.loads(result.output)["problems"]}
    assert found == {
        ("Tasks/Near.md", 4): "template [[Bad]] is Tasks/Bad.md, a task note, "
        "not a template note (type: template)",
        ("Tasks/Agent.md", 4): "template [[A]] is Agents/A.md, an agent note, "
        "not a template note (type: template)",
        ("Tasks/Wf.md", 4): "template [[Flow]] is Workflows/Flow.md, a workflow note, "
        "not a template note (type: template)",
        ("Tasks/Plain.md", 4): "template Docs/Plain is Docs/Plain.md, a note with no type, "
        "not a template note (type: template)",
        ("Tasks/Gone.md", 4): "template [[Nowhere]] is not a note in the vault",
        ("Workflows/Flow.md", 3): "step 'draft': template [[A]] is Agents/A.md, an agent "
        "note, not a template note (type: template)",
        ("Tasks/Run.md", 3): "workflow flow is not a valid workflow in the vault",
    }
