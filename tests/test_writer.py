"""Write-back: byte-preserving frontmatter edits, merges with user edits, output notes."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from vault_bmad.errors import VaultPathError, WriteConflict
from vault_bmad.vault.frontmatter_edit import split_note, yaml_value
from vault_bmad.vault.writer import (
    OWNED_TASK_KEYS,
    NoteWriter,
    default_output_path,
    iso_time,
    set_frontmatter_keys,
    wikilink,
)

TASK = """\
---
type: task
# the user's own comment
status: todo            # the user writes todo; the service moves it on
agent: "[[Architect]]"  # optional
priority: 'high'
depends_on:
  - "[[Write the PRD]]"
  - "[[Brief]]"
notes: |
  keep
  these lines
---
The body is the request.
status: not frontmatter
"""


def frontmatter(text: str) -> dict[str, Any]:
    parts = split_note(text)
    assert parts is not None
    loaded = yaml.safe_load(parts.yaml)
    assert isinstance(loaded, dict)
    return loaded


# The pure edit.


def test_only_the_changed_line_differs() -> None:
    edited = set_frontmatter_keys(TASK, {"status": "running"})
    assert edited == TASK.replace("status: todo            #", "status: running            #")


def test_unchanged_values_keep_their_quoting() -> None:
    assert set_frontmatter_keys(TASK, {"priority": "high", "status": "todo"}) == TASK


def test_new_keys_go_at_the_end_and_none_removes() -> None:
    edited = set_frontmatter_keys(
        TASK, {"depends_on": None, "notes": None, "result": "[[Docs/PRD]]", "attempts": 2}
    )
    expected = TASK.replace('depends_on:\n  - "[[Write the PRD]]"\n  - "[[Brief]]"\n', "")
    expected = expected.replace("notes: |\n  keep\n  these lines\n", "")
    expected = expected.replace(
        "---\nThe body", 'result: "[[Docs/PRD]]"\nattempts: 2\n---\nThe body'
    )
    assert edited == expected


def test_a_block_value_becomes_one_line_and_keeps_the_key_line_comment() -> None:
    text = "---\ncache: # level\n  - L1\n  - L2\n# after\nz: 1\n---\n"
    assert (
        set_frontmatter_keys(text, {"cache": "miss"})
        == "---\ncache: miss # level\n# after\nz: 1\n---\n"
    )


def test_crlf_and_bom_survive_byte_for_byte() -> None:
    original = "\ufeff" + TASK.replace("\n", "\r\n")
    edited = set_frontmatter_keys(original, {"status": "done", "duration_ms": 1234})
    assert edited.startswith("\ufeff---\r\n")
    assert "\n" not in edited.replace("\r\n", "")
    assert edited.replace("status: done ", "status: todo ").replace(
        "duration_ms: 1234\r\n", ""
    ) == (original)
    assert frontmatter(edited)["duration_ms"] == 1234


def test_a_note_without_frontmatter_gets_one() -> None:
    assert set_frontmatter_keys("Just text\r\nmore", {"status": "invalid", "error": None}) == (
        "---\r\nstatus: invalid\r\n---\r\nJust text\r\nmore"
    )
    assert (
        set_frontmatter_keys("\ufeffHi", {"status": "queued"})
        == "\ufeff---\nstatus: queued\n---\nHi"
    )
    assert set_frontmatter_keys("Hi", {"error": None}) == "Hi"


@pytest.mark.parametrize(
    "value",
    [
        "a: b",
        "#tag",
        "[[Docs/PRD]]",
        "[not a list",
        "line one\nline two: with colon\n",
        "yes",
        "",
        "2024-05-01T10:00:00+02:00",
        "null",
        "- dash",
        "tab\there and \u2028 separator \x85 nel",
        "emoji 😀 and quote \" and '",
        3,
        2.5,
        True,
        ["a", "b: c"],
    ],
)
def test_values_are_one_line_of_yaml_that_loads_back(value: object) -> None:
    rendered = yaml_value(value)
    assert "\n" not in rendered and "\r" not in rendered
    edited = set_frontmatter_keys(TASK, {"error": value})
    assert frontmatter(edited)["error"] == value
    assert frontmatter(edited)["status"] == "todo"


def test_wikilinks_are_double_quoted_as_obsidian_writes_them() -> None:
    assert yaml_value("[[Tasks/x]]") == '"[[Tasks/x]]"'


def test_broken_yaml_is_edited_line_by_line() -> None:
    text = "---\ntitle: [unclosed\nstatus: todo # c\n  cont\n\nother: x\n---\nbody\n"
    edited = set_frontmatter_keys(text, {"status": "invalid", "error": "bad YAML: line 1"})
    assert edited == (
        '---\ntitle: [unclosed\nstatus: invalid\n\nother: x\nerror: "bad YAML: line 1"\n---\nbody\n'
    )


def test_an_alias_value_is_replaced_not_its_anchor() -> None:
    text = "---\nx: &a todo\nstatus: *a\n---\n"
    assert set_frontmatter_keys(text, {"status": "done"}) == "---\nx: &a todo\nstatus: done\n---\n"


def test_a_flow_mapping_frontmatter_is_rewritten_as_a_block() -> None:
    edited = set_frontmatter_keys("---\n{a: 1, status: todo}\n---\nb", {"status": "done"})
    assert frontmatter(edited) == {"a": 1, "status": "done"}
    assert edited.endswith("---\nb")


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=30),
)
_user_values = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
_keys = st.one_of(st.sampled_from(OWNED_TASK_KEYS), st.text(min_size=1, max_size=12))
_change_values = st.one_of(st.none(), st.text(max_size=40), st.integers(), st.booleans())


@settings(max_examples=200, deadline=None)
@given(
    user=st.dictionaries(_keys, _user_values, max_size=6),
    changes=st.dictionaries(st.sampled_from(OWNED_TASK_KEYS), _change_values, max_size=5),
    flow=st.sampled_from([False, None]),
    style=st.sampled_from([None, '"', "'", "|"]),
    crlf=st.booleans(),
    body=st.text(max_size=40),
)
def test_property_edit_then_load_equals_the_updated_mapping(
    user: dict[str, Any],
    changes: dict[str, Any],
    flow: bool | None,
    style: str | None,
    crlf: bool,
    body: str,
) -> None:
    newline = "\r\n" if crlf else "\n"
    dumped = ""
    if user:
        dumped = yaml.safe_dump(
            user, default_flow_style=flow, default_style=style, allow_unicode=True
        )
    assume((yaml.safe_load(dumped) or {}) == user)  # PyYAML itself mangles a few strings
    head = "# top comment\n" + dumped + "# bottom comment\n"
    text = ("---\n" + head + "---\n").replace("\n", newline) + body
    edited = set_frontmatter_keys(text, changes)

    expected = dict(user)
    for key, value in changes.items():
        if value is None:
            expected.pop(key, None)
        else:
            expected[key] = value
    parts = split_note(edited)
    assert parts is not None
    assert (yaml.safe_load(parts.yaml) or {}) == expected
    assert parts.body == body
    assert parts.yaml.startswith("# top comment" + newline)
    assert f"# bottom comment{newline}" in parts.yaml


# The writer on a real folder.


def test_update_writes_only_the_owned_keys(vault: Path) -> None:
    note = vault / "Tasks" / "Design.md"
    note.parent.mkdir()
    note.write_text(TASK, encoding="utf-8")
    writer = NoteWriter(vault)
    outcome = writer.update("Tasks/Design.md", {"status": "running", "attempts": 1}, TASK)
    assert outcome.written and not outcome.merged and outcome.kept == ()
    assert note.read_text(encoding="utf-8") == outcome.text
    assert frontmatter(outcome.text)["status"] == "running"
    assert outcome.text.endswith("---\nThe body is the request.\nstatus: not frontmatter\n")
    assert writer.wrote_last("Tasks/Design.md", outcome.text)
    assert writer.wrote_last("Tasks/Design.md", hashlib.sha256(outcome.text.encode()).hexdigest())
    assert not writer.wrote_last("Tasks/Design.md", TASK)
    again = writer.update("Tasks/Design.md", {"status": "running"}, outcome.text)
    assert not again.written and again.text == outcome.text


def test_update_refuses_keys_it_does_not_own(vault: Path) -> None:
    (vault / "t.md").write_text(TASK, encoding="utf-8")
    with pytest.raises(ValueError, match="priority"):
        NoteWriter(vault).update("t.md", {"priority": "low"}, None)


def test_a_user_edit_made_while_the_task_ran_is_kept(vault: Path) -> None:
    note = vault / "task.md"
    note.write_text(TASK.replace("\n", "\r\n"), encoding="utf-8", newline="")
    writer = NoteWriter(vault)
    read_text = note.read_bytes().decode("utf-8")
    running = writer.update("task.md", {"status": "running"}, read_text)

    # The user sets the task back to todo, adds a tag and a line, while it runs.
    user_text = (
        running.text.replace("status: running ", "status: todo ").replace(
            "type: task\r\n", "type: task\r\ntags: [urgent]\r\n"
        )
        + "Also: add a diagram.\r\n"
    )
    note.write_bytes(user_text.encode("utf-8"))

    done = writer.update(
        "task.md",
        {"status": "done", "completed": iso_time(0.0), "duration_ms": 42},
        running.text,
    )
    assert done.merged and done.kept == ("status",)
    on_disk = note.read_bytes().decode("utf-8")
    assert on_disk == done.text
    values = frontmatter(on_disk)
    assert values["status"] == "todo"
    assert values["tags"] == ["urgent"]
    assert values["duration_ms"] == 42
    assert on_disk.endswith("Also: add a diagram.\r\n")
    assert "\n" not in on_disk.replace("\r\n", "")


def test_a_user_edit_to_broken_frontmatter_is_kept_too(vault: Path) -> None:
    broken = "---\ntitle: [oops\nstatus: queued\n---\nBody\n"
    note = vault / "broken.md"
    note.write_text(broken, encoding="utf-8")
    note.write_text(broken.replace("status: queued", "status: todo"), encoding="utf-8")
    outcome = NoteWriter(vault).update(
        "broken.md", {"status": "invalid", "error": "frontmatter: unclosed ["}, broken
    )
    assert outcome.kept == ("status",)
    assert note.read_text(encoding="utf-8") == (
        '---\ntitle: [oops\nstatus: todo\nerror: "frontmatter: unclosed ["\n---\nBody\n'
    )


def test_an_unrelated_user_edit_is_merged_not_overwritten(vault: Path) -> None:
    note = vault / "task.md"
    note.write_text(TASK, encoding="utf-8")
    writer = NoteWriter(vault)
    note.write_text(TASK + "A line the user typed.\n", encoding="utf-8")
    outcome = writer.update("task.md", {"status": "done"}, TASK)
    assert outcome.merged and outcome.kept == ()
    assert note.read_text(encoding="utf-8") == set_frontmatter_keys(
        TASK + "A line the user typed.\n", {"status": "done"}
    )


def test_update_keeps_the_file_mode_and_leaves_no_temporary_files(vault: Path) -> None:
    note = vault / "task.md"
    note.write_text(TASK, encoding="utf-8")
    os.chmod(note, 0o640)
    NoteWriter(vault).update("task.md", {"status": "queued"}, None)
    assert stat.S_IMODE(note.stat().st_mode) == 0o640
    assert [p.name for p in vault.iterdir()] == ["task.md"]


def test_update_of_a_deleted_note_is_a_conflict(vault: Path) -> None:
    with pytest.raises(WriteConflict, match=r"gone\.md"):
        NoteWriter(vault).update("gone.md", {"status": "done"}, TASK)


@pytest.mark.parametrize("rel", ["../escape.md", "/tmp/abs.md", "Tasks/../../x.md"])
def test_update_refuses_paths_outside_the_vault(vault: Path, rel: str) -> None:
    with pytest.raises(VaultPathError):
        NoteWriter(vault).update(rel, {"status": "done"}, None)


def test_writes_through_a_symlink_out_of_the_vault_are_refused(vault: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.md"
    outside.write_text(TASK, encoding="utf-8")
    os.symlink(outside, vault / "link.md")
    os.symlink(tmp_path, vault / "Out")
    writer = NoteWriter(vault)
    with pytest.raises(VaultPathError):
        writer.update("link.md", {"status": "done"}, None)
    with pytest.raises(VaultPathError):
        writer.write_output("Out/result.md", "body", "link.md")
    assert outside.read_text(encoding="utf-8") == TASK
    assert not (tmp_path / "result.md").exists()


def test_concurrent_updates_of_one_note_all_land(vault: Path) -> None:
    note = vault / "task.md"
    note.write_text(TASK, encoding="utf-8")
    writer = NoteWriter(vault)
    keys = ["status", "error", "started", "completed", "agent_used", "cache", "attempts", "result"]

    def set_key(key: str) -> None:
        writer.update("task.md", {key: f"value of {key}"}, None)

    threads = [threading.Thread(target=set_key, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    values = frontmatter(note.read_text(encoding="utf-8"))
    assert all(values[key] == f"value of {key}" for key in keys)
    assert sorted(p.name for p in vault.iterdir()) == ["task.md"]


# Output notes.


def test_write_output_links_back_to_its_task(vault: Path) -> None:
    writer = NoteWriter(vault)
    body = "# PRD\n\nThe plan.\n"
    written = writer.write_output("Docs/Deep/PRD", body, "Tasks/Write the PRD.md", {"agent": "pm"})
    assert written == "Docs/Deep/PRD.md"
    text = (vault / written).read_text(encoding="utf-8")
    values = frontmatter(text)
    assert values["source_task"] == "[[Tasks/Write the PRD]]"
    assert values["generated_by"] == "vault-bmad"
    assert values["agent"] == "pm"
    assert 'source_task: "[[Tasks/Write the PRD]]"\n' in text
    assert split_note(text) is not None and split_note(text).body == body  # type: ignore[union-attr]
    assert writer.wrote_last(written, text)


def test_write_output_writes_to_the_default_path(vault: Path) -> None:
    default = default_output_path("Tasks/Plan.md", "Outputs")
    written = NoteWriter(vault).write_output(default, "x", "Tasks/Plan.md")
    assert written == default == "Outputs/Tasks/Plan - result.md"
    assert (vault / "Outputs" / "Tasks" / "Plan - result.md").is_file()
    assert wikilink(written) == "[[Outputs/Tasks/Plan - result]]"


def test_default_outputs_of_same_named_tasks_differ() -> None:
    names = ("Plan.md", "Tasks/Plan.md", "Work/Plan.md")
    paths = {default_output_path(p, "Outputs") for p in names}
    assert paths == {
        "Outputs/Plan - result.md",
        "Outputs/Tasks/Plan - result.md",
        "Outputs/Work/Plan - result.md",
    }


def test_write_output_never_clobbers_a_user_note(vault: Path) -> None:
    (vault / "Docs").mkdir()
    mine = vault / "Docs" / "PRD.md"
    mine.write_text("---\ntags: [mine]\n---\nMy own PRD.\n", encoding="utf-8")
    writer = NoteWriter(vault)

    first = writer.write_output("Docs/PRD.md", "Run one.\n", "Tasks/t.md")
    assert first == "Docs/PRD (2).md"
    assert mine.read_text(encoding="utf-8") == "---\ntags: [mine]\n---\nMy own PRD.\n"

    # A re-run replaces its own, unedited output, keeping a key the user added.
    beside = vault / first
    beside.write_text(
        beside.read_text(encoding="utf-8").replace("---\n", "---\ntags: [kept]\n", 1),
        encoding="utf-8",
    )
    second = writer.write_output("Docs/PRD.md", "Run two.\n", "Tasks/t.md")
    assert second == first
    assert beside.read_text(encoding="utf-8").endswith("---\nRun two.\n")
    assert frontmatter(beside.read_text(encoding="utf-8"))["tags"] == ["kept"]

    # Once the user edits the output's body, it is theirs.
    beside.write_text(beside.read_text(encoding="utf-8") + "My notes.\n", encoding="utf-8")
    third = writer.write_output("Docs/PRD.md", "Run three.\n", "Tasks/t.md")
    assert third == "Docs/PRD (3).md"
    assert beside.read_text(encoding="utf-8").endswith("Run two.\nMy notes.\n")
    assert (vault / third).read_text(encoding="utf-8").endswith("---\nRun three.\n")


def test_a_note_of_vault_bmads_own_has_no_source_task(vault: Path) -> None:
    writer = NoteWriter(vault)
    written = writer.write_output("Reports/Run 1.md", "Figures.\n", None, {"type": "report"})
    values = frontmatter((vault / written).read_text(encoding="utf-8"))
    assert values["generated_by"] == "vault-bmad" and values["type"] == "report"
    assert "source_task" not in values
    for source in (None, "Tasks/Plan.md"):  # reading the vault sets every task's output
        with pytest.raises(ValueError, match="no output note given"):
            writer.write_output(None, "x", source)
