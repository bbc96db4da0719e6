"""The whole-vault index on real folders: loading, ignoring, incremental updates, the CLI."""

from __future__ import annotations

import gc
import json
import os
import shutil
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import WriteNote
from vault_bmad.cli import main
from vault_bmad.errors import ConfigError, VaultPathError
from vault_bmad.model.sources import model_notes
from vault_bmad.vault.index import VaultIndex, clean_path, is_ignored


def targets(index: VaultIndex, rel_path: str) -> list[str | None]:
    return [target for _, target in index.resolved_links(rel_path)]


def bump(path: Path, text: str) -> None:
    """Rewrite a file so that its size or modification time surely changes."""
    before = path.stat().st_mtime_ns
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))


def test_load_reads_notes_and_knows_attachments(vault: Path, write: WriteNote) -> None:
    write("Home.md", "[[Projects/Plan]] ![[logo.png]] [[Missing]] [[#Top]]")
    write("Projects/Plan.md", "---\ntype: task\n---\nback to [[Home]]")
    (vault / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00")
    index = VaultIndex.load(vault)
    assert sorted(index.notes) == ["Home.md", "Projects/Plan.md"]
    assert index.files == {"Home.md", "Projects/Plan.md", "logo.png"}
    assert targets(index, "Home.md") == ["Projects/Plan.md", "logo.png", None, "Home.md"]
    assert targets(index, "Projects/Plan.md") == ["Home.md"]
    assert [note.path for note in model_notes(index, "task")] == ["Projects/Plan.md"]
    assert index.resolve("plan", "Home.md") == "Projects/Plan.md"
    assert index.get("Nope.md") is None and targets(index, "Nope.md") == []


def test_hidden_folders_and_files_are_ignored(vault: Path, write: WriteNote) -> None:
    for hidden in (".obsidian/workspace.md", ".trash/Old.md", ".vault-bmad/log.md", ".git/x.md"):
        write(hidden, "[[Home]]")
    write("Folder/.hidden.md", "secret")
    write("Home.md", "home")
    index = VaultIndex.load(vault)
    assert index.files == {"Home.md"}
    assert index.update(".trash/Old.md") is None
    assert index.files == {"Home.md"}
    assert is_ignored(".obsidian/app.json") and is_ignored("a/.b/c.md")
    assert not is_ignored("a/b.c/d.md")
    assert index.relative(vault / ".obsidian" / "x.md") is None
    assert index.relative(vault / "Folder" / "N.md") == "Folder/N.md"
    assert index.relative(vault.parent / "elsewhere.md") is None


def test_symlinks_out_of_the_vault_are_ignored(
    tmp_path: Path, vault: Path, write: WriteNote
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Secret.md").write_text("secret [[Home]]", encoding="utf-8")
    write("Home.md", "home")
    write("Real/Inner.md", "inner")
    (vault / "Leak.md").symlink_to(outside / "Secret.md")
    (vault / "LeakDir").symlink_to(outside, target_is_directory=True)
    (vault / "LoopDir").symlink_to(vault, target_is_directory=True)
    (vault / "Alias.md").symlink_to(vault / "Real" / "Inner.md")
    index = VaultIndex.load(vault)
    assert index.files == {"Home.md", "Real/Inner.md", "Alias.md"}
    assert index.notes["Alias.md"].body == "inner"
    assert index.update("Leak.md") is None
    assert index.update("LeakDir/Secret.md") is None
    assert index.update("LeakDir") is None
    assert index.files == {"Home.md", "Real/Inner.md", "Alias.md"}


def test_odd_files_become_notes_with_errors(vault: Path, write: WriteNote) -> None:
    (vault / "Binary.md").write_bytes(b"\x00\x01\x02 binary")
    (vault / "Empty.md").write_bytes(b"")
    (vault / "Big.md").write_text("x" * 5000, encoding="utf-8")
    (vault / "Crlf.md").write_bytes(b"\xef\xbb\xbf---\r\ntype: task\r\n---\r\n[[Big]]\r\n")
    write("Open.md", "---\ntype: task\n")
    index = VaultIndex.load(vault, max_note_bytes=4096)
    notes = index.notes
    assert notes["Binary.md"].error == "note holds binary data, not text"
    assert notes["Empty.md"].error is None and notes["Empty.md"].body == ""
    assert notes["Big.md"].error == "note is 4.9 KiB, over the 4.0 KiB limit"
    assert notes["Crlf.md"].type == "task" and targets(index, "Crlf.md") == ["Big.md"]
    assert notes["Open.md"].error_line == 1
    assert index.resolve("Big", "Crlf.md") == "Big.md"  # a refused note still resolves


def test_a_note_that_grows_between_stat_and_read(vault: Path, write: WriteNote) -> None:
    path = write("Grow.md", "small")
    stale = path.stat()  # what a scan saw just before the file grew
    path.write_text("y" * 50, encoding="utf-8")
    index = VaultIndex(vault, max_note_bytes=100)
    index._refresh("Grow.md", stale)
    assert index.notes["Grow.md"].body == "y" * 50
    path.write_text("z" * 500, encoding="utf-8")
    index = VaultIndex(vault, max_note_bytes=100)
    index._refresh("Grow.md", stale)
    assert index.notes["Grow.md"].error == "note is 500 bytes, over the 100 bytes limit"


def test_a_scan_leaves_the_cycle_collector_as_it_found_it(vault: Path, write: WriteNote) -> None:
    write("A.md", "a")
    assert gc.isenabled()
    VaultIndex.load(vault)
    assert gc.isenabled()
    gc.disable()
    try:
        VaultIndex.load(vault)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_missing_vault_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="vault folder not found"):
        VaultIndex.load(tmp_path / "nope")


def test_paths_may_not_leave_the_vault(vault: Path, write: WriteNote) -> None:
    write("Home.md", "home")
    index = VaultIndex.load(vault)
    for bad in ("../outside.md", "/etc/passwd", "a/../../x.md", ".."):
        with pytest.raises(VaultPathError):
            index.update(bad)
        with pytest.raises(VaultPathError):
            index.read_text(bad)
    assert clean_path("./a//b/../c.md") == "a/c.md"
    assert index.update("") is None and index.update(".") is None
    index.remove("")
    assert index.files == {"Home.md"}


# --- incremental updates -------------------------------------------------------------------


def test_a_link_resolves_once_its_target_is_added(vault: Path, write: WriteNote) -> None:
    write("Home.md", "[[Later]] [[Sub/Later]]")
    index = VaultIndex.load(vault)
    assert targets(index, "Home.md") == [None, None]
    write("Sub/Later.md", "now here")
    note = index.update("Sub/Later.md")
    assert note is not None and note.body == "now here"
    assert targets(index, "Home.md") == ["Sub/Later.md", "Sub/Later.md"]


def test_a_changed_note_is_read_again(vault: Path, write: WriteNote) -> None:
    path = write("Task.md", "---\ntype: task\n---\n[[A]]")
    write("A.md", "a")
    write("B.md", "b")
    index = VaultIndex.load(vault)
    first = index.notes["Task.md"]
    assert index.update("Task.md") is first  # unchanged: not read again
    bump(path, "---\ntype: agent\n---\n[[B]] #new")
    second = index.update("Task.md")
    assert second is not None and second is not first
    assert second.type == "agent" and second.tags == ("new",)
    assert targets(index, "Task.md") == ["B.md"]
    assert model_notes(index, "task") == []


def test_a_deleted_note_unresolves_links_to_it(vault: Path, write: WriteNote) -> None:
    write("Home.md", "[[Gone]] [[Shared]]")
    gone = write("Gone.md", "bye")
    write("Shared.md", "root")
    write("Home/Shared.md", "nested")
    index = VaultIndex.load(vault)
    assert targets(index, "Home.md") == ["Gone.md", "Shared.md"]
    gone.unlink()
    assert index.update("Gone.md") is None  # the watcher reports a change; the file is gone
    (vault / "Shared.md").unlink()
    index.remove("Shared.md")
    assert "Gone.md" not in index.files and "Shared.md" not in index.notes
    assert targets(index, "Home.md") == [None, "Home/Shared.md"]


def test_moves_change_what_other_notes_point_to(vault: Path, write: WriteNote) -> None:
    write("Home.md", "[[Note]] [[Inbox/Note]] [[Archive/Note]]")
    write("Inbox/Note.md", "note")
    index = VaultIndex.load(vault)
    assert targets(index, "Home.md") == ["Inbox/Note.md", "Inbox/Note.md", None]
    (vault / "Archive").mkdir()
    (vault / "Inbox/Note.md").rename(vault / "Archive/Note.md")
    moved = index.move("Inbox/Note.md", "Archive/Note.md")
    assert moved is not None and moved.path == "Archive/Note.md"
    assert targets(index, "Home.md") == ["Archive/Note.md", None, "Archive/Note.md"]


def test_moving_and_deleting_folders(vault: Path, write: WriteNote) -> None:
    write("Home.md", "[[Plan]] [[Old/Plan]] [[New/Deep/Spec]]")
    write("Old/Plan.md", "plan")
    write("Old/Deep/Spec.md", "spec")
    write("Older/Keep.md", "keep")  # shares a prefix with Old/ but is not under it
    index = VaultIndex.load(vault)
    (vault / "Old").rename(vault / "New")
    assert index.move("Old", "New") is None
    assert index.files == {"Home.md", "New/Plan.md", "New/Deep/Spec.md", "Older/Keep.md"}
    assert targets(index, "Home.md") == ["New/Plan.md", None, "New/Deep/Spec.md"]
    shutil.rmtree(vault / "New")
    index.update("New")  # a vanished folder drops everything under it
    assert index.files == {"Home.md", "Older/Keep.md"}
    write("Copied/A.md", "a")
    write("Copied/Sub/B.md", "b")
    assert index.update("Copied") is None
    assert {"Copied/A.md", "Copied/Sub/B.md"} <= index.files
    (vault / "Older" / "Keep.md").unlink()
    write("Older/Keep.md/Inside.md", "a file replaced by a folder of the same name")
    index.update("Older/Keep.md")
    assert "Older/Keep.md" not in index.files
    assert "Older/Keep.md/Inside.md" in index.notes


def test_scan_catches_up_with_changes_behind_its_back(vault: Path, write: WriteNote) -> None:
    write("Keep.md", "keep")
    gone = write("Gone.md", "gone")
    index = VaultIndex.load(vault)
    kept = index.notes["Keep.md"]
    gone.unlink()
    write("New.md", "[[Keep]]")
    index.scan()
    assert index.files == {"Keep.md", "New.md"}
    assert index.notes["Keep.md"] is kept  # unchanged files are not read again
    assert targets(index, "New.md") == ["Keep.md"]


def test_concurrent_updates_and_reads(vault: Path, write: WriteNote) -> None:
    for i in range(40):
        write(f"N{i}.md", f"[[N{(i + 1) % 40}]]")
    index = VaultIndex.load(vault)
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            for round_ in range(5):
                for i in range(offset, 40, 4):
                    bump(vault / f"N{i}.md", f"[[N{(i + 2) % 40}]] round {round_}")
                    index.update(f"N{i}.md")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(50):
                index.as_dict()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all("round 4" in index.notes[f"N{i}.md"].body for i in range(40))
    assert all(targets(index, f"N{i}.md") == [f"N{(i + 2) % 40}.md"] for i in range(40))


def test_read_text_for_other_files(vault: Path) -> None:
    (vault / "agent.yaml").write_bytes(b"\xef\xbb\xbfagent: x\n")
    assert VaultIndex.load(vault).read_text("agent.yaml") == "agent: x\n"


# --- the `index` command -------------------------------------------------------------------


def test_index_command_json(vault: Path, write: WriteNote) -> None:
    write(
        "Tasks/Plan.md",
        """\
        ---
        type: Task
        created: 2024-05-01
        due: 2024-06-01 09:30:00
        tags: [work]
        agent: "[[Architect]]"
        ---
        See [[Missing]] and [doc](../Docs/Spec%20One.md) and #urgent
        """,
    )
    write("Docs/Spec One.md", "spec")
    write("Agents/Architect.md", "---\ntype: agent\n---\n")
    write(".obsidian/ignored.md", "x")
    result = CliRunner().invoke(main, ["index", str(vault), "--format", "json"])
    assert result.exit_code == 0, result.output
    notes = json.loads(result.output)["notes"]
    assert [note["path"] for note in notes] == [
        "Agents/Architect.md",
        "Docs/Spec One.md",
        "Tasks/Plan.md",
    ]
    plan = notes[2]
    assert plan["type"] == "task"
    assert plan["tags"] == ["work", "urgent"]
    assert plan["frontmatter"]["created"] == "2024-05-01"
    assert plan["frontmatter"]["due"] == "2024-06-01T09:30:00"
    assert plan["links"] == [
        {"raw": "[[Missing]]", "target": None},
        {"raw": "[doc](../Docs/Spec%20One.md)", "target": "Docs/Spec One.md"},
        {"raw": "[[Architect]]", "target": "Agents/Architect.md"},
    ]
    assert plan["error"] is None


def test_index_command_text(vault: Path, write: WriteNote) -> None:
    write("A.md", "[[B]] [[Nowhere]]")
    write("B.md", "---\ntype: agent\n---\n")
    write("Broken.md", "---\n- a list\n---\n")
    result = CliRunner().invoke(main, ["index", str(vault)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "A.md  type=-  links=2  unresolved=1"
    assert lines[1] == "B.md  type=agent  links=0  unresolved=0"
    assert lines[2].startswith("Broken.md  type=-  links=0  unresolved=0  (frontmatter must be")
    assert lines[-1] == "3 notes"


def test_index_command_refuses_a_missing_vault(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["index", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no vault at" in result.output and "no such folder" in result.output
