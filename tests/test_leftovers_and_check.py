"""What a start clears and what `check` reads: the write-back's temporary files a kill -9
left (only those), and the vault's own vault-bmad.toml."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from tests.conftest import WriteNote
from vault_bmad.cli import main
from vault_bmad.runner import EXIT_NEEDS_INPUT
from vault_bmad.vault.leftovers import is_leftover, temporary_path


def test_a_start_removes_only_the_temporary_files_of_an_interrupted_write(
    sample_vault: Path,
) -> None:
    note = sample_vault / "Tasks" / "Write the PRD.md"
    ours = [temporary_path(note), temporary_path(sample_vault / "Outputs" / "Old - result.md")]
    ours[1].parent.mkdir(exist_ok=True)
    for path in ours:  # as a write killed between its temporary file and the rename leaves
        path.write_text(note.read_text()[:40])
    theirs = [
        sample_vault / "Tasks" / ".notes.tmp",
        sample_vault / "Tasks" / "draft.tmp",
        sample_vault / "Tasks" / ".Write the PRD.md.0123456789AB.tmp",  # not our hex
        sample_vault / "Tasks" / ".Write the PRD.md.0123456789ab.tmp.bak",
        sample_vault / "Tasks" / ".sketch.canvas.0123456789ab.tmp",  # we write notes only
        sample_vault / ".obsidian" / ".workspace.md.0123456789ab.tmp",  # we never write there
    ]
    for path in theirs:
        path.parent.mkdir(exist_ok=True)
        path.write_text("a user's file\n")
    assert all(is_leftover(path.name) for path in ours)
    env = {**os.environ, "XDG_CONFIG_HOME": str(sample_vault.parent / "xdg")}
    done = subprocess.run(
        [sys.executable, "-m", "vault_bmad.cli", "run", str(sample_vault)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == EXIT_NEEDS_INPUT, done.stderr  # the sample's interviewer asks
    assert not any(path.exists() for path in ours)
    assert all(path.read_text() == "a user's file\n" for path in theirs)
    assert "removed 2 temporary file(s) an interrupted write left" in done.stderr


def test_check_lists_the_vault_files_problems_with_the_notes(vault: Path, write: WriteNote) -> None:
    write("Tasks/Bad.md", "---\ntype: task\npriority: asap\n---\n")
    write("vault-bmad.toml", 'retries = "many"\n')
    result = CliRunner().invoke(main, ["check", str(vault), "--format", "json"])
    assert result.exit_code == 1
    problems = json.loads(result.output)["problems"]
    assert [p["path"] for p in problems] == ["vault-bmad.toml", "Tasks/Bad.md"]
    assert "retries must be a whole number" in problems[0]["message"]
    write("vault-bmad.toml", "[settings\n")
    broken = CliRunner().invoke(main, ["check", str(vault)])
    assert broken.exit_code == 1
    assert "vault-bmad.toml:1: " in broken.output and "not valid TOML" in broken.output
    assert "Tasks/Bad.md:3: priority" in broken.output  # a bad file hides no note's problem


def test_check_applies_the_vault_files_settings(vault: Path, write: WriteNote) -> None:
    write("Agents/Writer.md", "---\ntype: agent\n---\nWrites.\n")
    write("vault-bmad.toml", 'output_folder = ".obsidian/plugins/evil"\n')
    hidden = CliRunner().invoke(main, ["check", str(vault)])
    assert hidden.exit_code == 1 and "output_folder" in hidden.output
    write("vault-bmad.toml", 'output_folder = "Results"\n')
    assert CliRunner().invoke(main, ["check", str(vault)]).exit_code == 0


def test_check_tells_an_agent_its_runtime_is_off(vault: Path, write: WriteNote) -> None:
    write(
        "Agents/Linter.md", '---\ntype: agent\nruntime: command\ncommand: ["ruff"]\n---\nLints.\n'
    )
    off = CliRunner().invoke(main, ["check", str(vault)])
    assert off.exit_code == 1
    assert "Agents/Linter.md: agent linter needs the command runtime, which is off" in off.output
    config = vault.parent / "config.toml"
    config.write_text('command_enabled = true\ncommand_allowlist = ["ruff"]\n')
    on = CliRunner().invoke(main, ["check", str(vault), "--config", str(config)])
    assert on.exit_code == 0, on.output
    config.write_text('command_enabled = true\ncommand_allowlist = ["black"]\n')
    other = CliRunner().invoke(main, ["check", str(vault), "--config", str(config)])
    assert other.exit_code == 1 and "not in command_allowlist" in other.output
