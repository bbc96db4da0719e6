"""Notes vault-bmad cannot use or may not change: reported as invalid with the reason in
`check`, `run --format json` and the dashboard, never run, never rewritten; and invalid
stays invalid across restarts until the note changes."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import frontmatter
import httpx
import pytest
from click.testing import CliRunner

from tests.conftest import WriteNote, check_json, run_json
from vault_bmad.cli import main
from vault_bmad.config import load_settings
from vault_bmad.metrics.store import Store
from vault_bmad.service import Service

AGENT = "---\ntype: agent\n---\nI write.\n"
TASK = "---\ntype: task\nagent: a\n---\nGo.\n"


def attempted(vault: Path) -> set[str]:
    with Store(vault / ".vault-bmad" / "state.db") as store:
        return {attempt.task_id for attempt in store.attempts(limit=1000)}


def problem_of(problems: list[dict[str, object]], path: str) -> str:
    return "; ".join(str(p["message"]) for p in problems if p["path"] == path)


@pytest.fixture
def chmodded() -> Iterator[list[Path]]:
    """Paths a test made read-only, made writable again afterwards so tmp_path can go."""
    paths: list[Path] = []
    yield paths
    for path in paths:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_an_invalid_status_stays_invalid_until_the_note_changes(
    vault: Path, write: WriteNote
) -> None:
    write("Agents/A.md", AGENT)
    note = write("Tasks/Odd.md", "---\ntype: task\nagent: a\nstatus: banana\n---\nGo.\n")
    code, first = run_json(vault)
    assert (code, first["invalid"]) == (1, ["Tasks/Odd.md"])
    assert frontmatter.load(note)["status"] == "invalid"
    for _ in range(2):  # restarts, with nothing changed
        code, again = run_json(vault)
        assert (code, again["invalid"], again["done"]) == (1, ["Tasks/Odd.md"], 0)
        assert "status: Input should be" in problem_of(again["problems"], "Tasks/Odd.md")
    assert attempted(vault) == set()
    code, problems = check_json(vault)
    assert code == 1 and "status" in problem_of(problems, "Tasks/Odd.md")
    note.write_text(note.read_text().replace("Go.", "Go, now that it is fixed."))
    code, fixed = run_json(vault)
    assert (code, fixed["invalid"], fixed["done"]) == (0, [], 1)
    assert frontmatter.load(note)["status"] == "done"


def test_setting_todo_runs_an_invalid_task_again(vault: Path, write: WriteNote) -> None:
    write("Agents/A.md", AGENT)
    note = write("Tasks/Odd.md", "---\ntype: task\nagent: a\nstatus: banana\n---\nGo.\n")
    run_json(vault)
    note.write_text(note.read_text().replace("status: invalid", "status: todo"))
    code, outcome = run_json(vault)
    assert (code, outcome["done"]) == (0, 1)


def test_a_latin_1_note_is_invalid_and_left_byte_for_byte(vault: Path, write: WriteNote) -> None:
    write("Agents/A.md", AGENT)
    note = vault / "Tasks/Café.md"
    note.parent.mkdir(parents=True)
    data = "---\ntype: task\nagent: a\n---\nCommande du café.\n".encode("latin-1")
    note.write_bytes(data)
    code, problems = check_json(vault)
    assert code == 1 and "not UTF-8 text (byte 0xE9 on line 5)" in problem_of(
        problems, "Tasks/Café.md"
    )
    for _ in range(2):
        code, outcome = run_json(vault)
        assert (code, outcome["invalid"], outcome["done"]) == (1, ["Tasks/Café.md"], 0)
        assert "UTF-8" in problem_of(outcome["problems"], "Tasks/Café.md")
    assert note.read_bytes() == data
    assert attempted(vault) == set()


def test_a_read_only_note_is_reported_and_never_replaced(
    vault: Path, write: WriteNote, chmodded: list[Path]
) -> None:
    write("Agents/A.md", AGENT)
    note = write("Tasks/Frozen.md", TASK)
    note.chmod(0o444)
    chmodded.append(note)
    before = (note.read_bytes(), os.stat(note).st_ino)
    code, problems = check_json(vault)
    assert code == 1 and "read-only" in problem_of(problems, "Tasks/Frozen.md")
    code, outcome = run_json(vault)
    assert (code, outcome["invalid"], outcome["done"]) == (1, ["Tasks/Frozen.md"], 0)
    assert (note.read_bytes(), os.stat(note).st_ino) == before  # not even replaced in place
    assert stat.S_IMODE(note.stat().st_mode) == 0o444
    assert attempted(vault) == set()


def test_a_note_in_a_read_only_folder_does_not_run_every_start(
    vault: Path, write: WriteNote, chmodded: list[Path]
) -> None:
    write("Agents/A.md", AGENT)
    note = write("Locked/Task.md", TASK)
    note.parent.chmod(0o555)
    chmodded.append(note.parent)
    for _ in range(2):
        code, outcome = run_json(vault)
        assert (code, outcome["invalid"], outcome["done"]) == (1, ["Locked/Task.md"], 0)
        assert "read-only folder" in problem_of(outcome["problems"], "Locked/Task.md")
    assert note.read_text() == TASK
    assert attempted(vault) == set()


def test_unusable_frontmatter_is_a_problem_of_a_task_not_a_skip(
    vault: Path, write: WriteNote
) -> None:
    write("Agents/A.md", AGENT)
    bomb = "".join(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 9))
    write("Tasks/Bomb.md", "---\ntype: task\nl0: &l0 x\n" + bomb + "---\nGo.\n")
    deep = "---\ntype: task\nx: " + "[" * 600 + "]" * 600 + "\n---\nGo.\n"
    write("Tasks/Deep.md", deep)
    huge = "---\ntype: task\n" + "".join(f"k{i}: {i}\n" for i in range(20_000)) + "---\nGo.\n"
    write("Tasks/Huge.md", huge)
    big = vault / "Tasks/Big.md"
    big.write_text("---\ntype: task\nagent: a\n---\n" + "x" * (6 * 1024 * 1024))
    size = big.stat().st_size
    for command in (["index", str(vault)], ["index", str(vault), "--format", "json"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 0, result.output
    code, problems = check_json(vault)
    assert code == 1
    assert "through YAML aliases" in problem_of(problems, "Tasks/Bomb.md")
    assert "nests deeper than 50 levels" in problem_of(problems, "Tasks/Deep.md")
    assert "over 10000 values" in problem_of(problems, "Tasks/Huge.md")
    assert "over the 5.0 MiB limit" in problem_of(problems, "Tasks/Big.md")
    code, outcome = run_json(vault)
    expected = ["Tasks/Big.md", "Tasks/Bomb.md", "Tasks/Deep.md", "Tasks/Huge.md"]
    assert (code, outcome["invalid"], outcome["done"]) == (1, expected, 0)
    assert big.stat().st_size == size  # too big to rewrite: left as it is
    assert frontmatter.load(vault / "Tasks/Deep.md")["status"] == "invalid"


def test_the_dashboard_lists_notes_it_may_not_run_with_the_reason(
    vault: Path, write: WriteNote, chmodded: list[Path]
) -> None:
    write("Agents/A.md", AGENT)
    note = write("Tasks/Frozen.md", TASK)
    note.chmod(0o444)
    chmodded.append(note)
    service = Service(vault, load_settings(vault, None, overrides={"port": 0}))
    service.start()
    try:
        problems = httpx.get(service.url + "api/problems", timeout=30).json()["problems"]
    finally:
        service.stop()
    assert [p["path"] for p in problems] == ["Tasks/Frozen.md"]
    assert "read-only" in problems[0]["message"]
    assert note.read_text() == TASK
