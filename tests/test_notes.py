"""Parsing one note: frontmatter, body syntax, odd files, and text that must never crash."""

from __future__ import annotations

import datetime as dt
import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from vault_bmad.vault.notes import Heading, Note, decode_note, json_safe, parse_note
from vault_bmad.vault.syntax import mask_code

TASK = """\
---
type: Task
tags: [design, "#api"]
created: 2024-05-01
agent: "[[Architect]]"
---
# Design the API #draft

Some text with #inline/nested and #draft again. ^intro

## Steps ##
- first [[Write the PRD]]
- second ![[diagram.png|300]] ^step-2

status:: in progress
"""


def everything(note: Note) -> tuple[object, ...]:
    """All a note says, lazily computed parts included."""
    return (
        note,
        note.links,
        note.tags,
        note.headings,
        note.block_ids,
        note.fields,
        note.property_lines,
    )


def test_a_whole_task_note() -> None:
    note = parse_note("Tasks/Design.md", TASK)
    assert note.error is None
    assert note.type == "task"
    assert note.name == "Design"
    assert note.frontmatter["created"] == dt.date(2024, 5, 1)
    assert note.body_line == 7
    assert note.body.startswith("# Design the API")
    assert note.tags == ("design", "api", "draft", "inline/nested")
    assert note.headings == (Heading(1, "Design the API #draft", 7), Heading(2, "Steps", 11))
    assert note.block_ids == ("intro", "step-2")
    assert note.fields == {"status": ("in progress",)}
    assert [link.target for link in note.links] == ["Write the PRD", "diagram.png", "Architect"]
    assert note.property_lines == {"type": 2, "tags": 3, "created": 4, "agent": 5}


# --- tags ----------------------------------------------------------------------------------


def tags(text: str) -> tuple[str, ...]:
    return parse_note("a.md", text).tags


def test_inline_tags() -> None:
    assert tags("#top and #a/b/c, #with-dash_and_underscore. #trailing/") == (
        "top",
        "a/b/c",
        "with-dash_and_underscore",
        "trailing",
    )
    assert tags("#日本語 #émoji") == ("日本語", "émoji")


def test_what_is_not_a_tag() -> None:
    text = (
        "# Heading\n## Another heading\n#123 and #2024 are numbers\n"
        "https://example.com/page#anchor and [x](Note.md#part) and [[Note#Part]]\n"
        "word#notag and `#code` and\n```\n#fenced\n```\nC# and &#123;"
    )
    assert tags(text) == ()


def test_frontmatter_tags_as_list_or_string() -> None:
    assert tags("---\ntags: [a, b/c]\n---\n") == ("a", "b/c")
    assert tags("---\ntags:\n  - one\n  - '#two'\n---\n") == ("one", "two")
    assert tags("---\ntags: one, two three\n---\n") == ("one", "two", "three")
    assert tags("---\ntag: single\n---\n") == ("single",)
    assert tags("---\ntags:\n---\n#body") == ("body",)
    assert tags("---\ntags: [a, {b: c}, true]\n---\n") == ("a",)  # odd items are skipped


# --- headings, block ids and Dataview fields --------------------------------------------------


def test_headings() -> None:
    note = parse_note("a.md", "#NotHeading\n   ### Three ###\n####### seven\n#\n# Closing # text #")
    assert [(h.level, h.text, h.line) for h in note.headings] == [
        (3, "Three", 2),
        (1, "", 4),
        (1, "Closing # text", 5),
    ]


def test_block_ids() -> None:
    note = parse_note("a.md", "para ^abc\n^alone\nnot^inside\n| table |\n\n^tbl-1\n`^code`")
    assert note.block_ids == ("abc", "alone", "tbl-1")


def test_dataview_fields_in_all_three_forms() -> None:
    text = (
        "status:: draft\n"
        "**Owner**:: Ada\n"
        "- due:: 2024-06-01\n"
        "Rated [rating:: 9] and (hidden:: yes) inline.\n"
        "[up:: [[Parent Note]]] and (see:: [[A]], [[B]])\n"
        "`code:: no`\n"
        "```\nfenced:: no\n```\n"
        "url: https://example.com::x\n"
    )
    fields = parse_note("a.md", text).fields
    assert fields == {
        "status": ("draft",),
        "Owner": ("Ada",),
        "due": ("2024-06-01",),
        "rating": ("9",),
        "hidden": ("yes",),
        "up": ("[[Parent Note]]",),
        "see": ("[[A]], [[B]]",),
    }


def test_repeated_field_keeps_every_value() -> None:
    assert parse_note("a.md", "k:: 1\nk:: 2\n[k:: 3]").fields == {"k": ("1", "2", "3")}


# --- frontmatter edge cases ------------------------------------------------------------------


def test_crlf_and_bom_give_the_same_note() -> None:
    plain = parse_note("a.md", TASK)
    assert everything(parse_note("a.md", TASK.replace("\n", "\r\n"))) == everything(plain)
    assert everything(parse_note("a.md", "\ufeff" + TASK)) == everything(plain)
    assert everything(decode_note("a.md", b"\xef\xbb\xbf" + TASK.encode())) == everything(plain)
    assert everything(parse_note("a.md", TASK.replace("\n", "\r"))) == everything(plain)


def test_unterminated_frontmatter_is_body() -> None:
    note = parse_note("a.md", "---\ntype: task\n[[Link]]\n")
    assert note.frontmatter == {}
    assert note.error == "frontmatter opened with --- on line 1 is never closed"
    assert note.error_line == 1
    assert note.body == "---\ntype: task\n[[Link]]\n"
    assert [link.line for link in note.links] == [3]


def test_broken_yaml_names_its_line() -> None:
    note = parse_note("a.md", "---\ntype: task\ntitle: ok\nbad: [unclosed\nnext: 1\n---\nbody")
    assert note.frontmatter == {}
    assert note.error == (
        "broken YAML in frontmatter: did not find expected ',' or ']'"
        " (while parsing a flow sequence from line 4)"
    )
    assert note.error_line == 5
    assert (note.body, note.body_line) == ("body", 7)


def test_broken_yaml_lines_stay_inside_the_frontmatter() -> None:
    assert parse_note("a.md", "---\na: 1\nb: 2\nc: d: e\n---\n").error_line == 4
    assert parse_note("a.md", "---\n\tkey: tab\n---\n").error_line == 2
    unterminated = parse_note("a.md", '---\na: "open\nb: 1\n---\n')
    assert unterminated.error_line == 3  # the parser meets the end, past line 3
    assert unterminated.error is not None
    assert unterminated.error.endswith("(while scanning a quoted scalar from line 2)")


def test_a_frontmatter_that_is_a_list() -> None:
    note = parse_note("a.md", "---\n- one\n- two\n---\ntext")
    assert note.frontmatter == {}
    assert note.error == "frontmatter must be a mapping of keys to values, not a list"
    assert note.body == "text"


def test_frontmatter_fences_as_obsidian_sees_them() -> None:
    assert parse_note("a.md", "---\n---\nbody").body == "body"
    assert parse_note("a.md", "--- \na: 1\n---  \nbody").frontmatter == {"a": 1}
    assert parse_note("a.md", "----\na: 1\n---\n").frontmatter == {}  # not a fence
    assert parse_note("a.md", "\n---\na: 1\n---\n").frontmatter == {}  # not on line 1
    inner_dashes = parse_note("a.md", "---\na: |\n  ----\n---\nbody")  # not a closing line
    assert (inner_dashes.frontmatter, inner_dashes.body) == ({"a": "----\n"}, "body")
    only_fence = parse_note("a.md", "---")
    assert (only_fence.body, only_fence.error) == ("---", None)


def test_keys_that_are_not_strings_become_strings() -> None:
    note = parse_note("a.md", "---\n2024: year\nnull: nothing\ntrue: yes\n---\n")
    assert note.frontmatter == {"2024": "year", "None": "nothing", "True": True}


def test_bad_values_and_alias_bombs_are_errors_not_crashes() -> None:
    bad_date = parse_note("a.md", "---\nwhen: 2024-13-45\n---\n")
    assert bad_date.frontmatter == {}
    assert bad_date.error is not None and "broken YAML" in bad_date.error
    cycle = parse_note("a.md", "---\na: &x [*x, '[[N]]']\n---\n[[Body]]")
    assert cycle.frontmatter == {}
    assert cycle.error is not None and "refers to itself" in cycle.error
    assert [link.target for link in cycle.links] == ["Body"]
    lines = ["c0: &c0 ['[[x]]', '[[x]]']"]
    lines += [f"c{i}: &c{i} [*c{i - 1}, *c{i - 1}]" for i in range(1, 30)]  # 2**30 values
    bomb = parse_note("a.md", "---\n" + "\n".join(lines) + "\n---\n")
    assert bomb.error is not None and "through YAML aliases" in bomb.error
    assert bomb.links == ()
    shared = parse_note("a.md", "---\nbase: &b {x: 1}\ncopy: *b\n---\n")
    assert shared.frontmatter == {"base": {"x": 1}, "copy": {"x": 1}}  # fair use is fine


def test_python_tags_are_refused() -> None:
    note = parse_note("a.md", "---\nx: !!python/object/apply:os.system ['echo hi']\n---\n")
    assert note.frontmatter == {}
    assert note.error is not None


# --- odd files -------------------------------------------------------------------------------


def test_empty_file() -> None:
    for note in (parse_note("a.md", ""), decode_note("a.md", b"")):
        assert everything(note)[1:] == ((), (), (), (), {}, {})
        assert note.error is None and note.body == ""


def test_binary_data_in_a_note() -> None:
    note = decode_note("a.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert note.error == "note holds binary data, not text"
    assert note.links == () and note.frontmatter == {}


def test_invalid_utf8_is_read_with_replacements_and_reported() -> None:
    note = decode_note("a.md", b"---\ntype: task\n---\ncaf\xe9 [[Link]] \xff")
    assert note.error is not None
    assert note.error.startswith("note is not UTF-8 text (byte 0xE9 on line 4)")
    assert (note.error_line, note.type) == (4, "task")
    assert [link.target for link in note.links] == ["Link"]
    assert "\ufffd" in note.body


def test_a_note_over_the_size_limit() -> None:
    note = decode_note("big.md", b"x" * 3000, max_bytes=2048)
    assert note.error == "note is 2.9 KiB, over the 2.0 KiB limit"
    assert note.body == ""
    huge = decode_note("big.md", b"", size=6 * 1024 * 1024)
    assert huge.error == "note is 6.0 MiB, over the 5.0 MiB limit"


def test_a_huge_note_within_the_limit() -> None:
    lines = [
        f"## Part {i}\nText [[Note {i}]] #tag{i % 7} ^b{i}\nkey{i}:: {i}" for i in range(20_000)
    ]
    note = parse_note("big.md", "\n".join(lines))
    assert len(note.links) == 20_000
    assert note.links[-1].line == 59_999
    assert note.headings[-1] == Heading(2, "Part 19999", 59_998)
    assert len(note.tags) == 7
    assert len(note.block_ids) == 20_000
    assert note.fields["key19999"] == ("19999",)


def test_hostile_inputs_stay_linear() -> None:
    """Inputs that made earlier patterns backtrack: each must parse (and quickly)."""
    spaces = " " * 200_000
    assert parse_note("a.md", f"# a{spaces}b").headings[0].text == f"a{spaces}b"
    assert parse_note("a.md", "` " * 100_000 + "[[End]]").links[0].target == "End"
    assert parse_note("a.md", "[a](b" + spaces + "c) [[End]]").links[0].target == "End"
    assert parse_note("a.md", "(" * 50_000 + "k:: v").fields == {}
    assert parse_note("a.md", "#" * 100_000).tags == ()
    assert parse_note("a.md", "[[" * 50_000 + "x]]").links[0].target == "x"


# --- JSON-safe frontmatter -------------------------------------------------------------------


def test_json_safe_values() -> None:
    note = parse_note(
        "a.md",
        "---\nday: 2024-05-01\nat: 2024-05-01 10:30:00\nnan: .nan\ninf: -.inf\n"
        "set: !!set {b, a}\nblob: !!binary aGk=\nnested: {1: [2024-01-02]}\n---\n",
    )
    safe = json_safe(note.frontmatter)
    assert safe == {
        "day": "2024-05-01",
        "at": "2024-05-01T10:30:00",
        "nan": "nan",
        "inf": "-inf",
        "set": ["a", "b"],
        "blob": "aGk=",
        "nested": {"1": ["2024-01-02"]},
    }
    assert json.loads(json.dumps(safe, allow_nan=False)) == safe
    assert math.isnan(note.frontmatter["nan"])


# --- properties: no text makes parsing fail ---------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        "---",
        "\n",
        "\r\n",
        "\r",
        "\ufeff",
        "[[",
        "]]",
        "|",
        "\\|",
        "#",
        "^",
        "::",
        "`",
        "```",
        "~~~",
        "> ",
        "](",
        "(",
        ")",
        "<",
        ">",
        "!",
        "%20",
        "&a ",
        "*a",
        ": ",
        "- ",
        "[",
        "]",
        "tags: ",
        "**",
        "    ",
        "\t",
        "\x00",
        "name",
    ]
)
NOTE_TEXT = st.lists(st.one_of(FRAGMENTS, st.text(max_size=8)), max_size=60).map("".join)


@settings(max_examples=400, deadline=None)
@given(NOTE_TEXT)
def test_parsing_any_text_never_raises(text: str) -> None:
    note = parse_note("any.md", text)
    everything(note)
    json.dumps(json_safe(note.frontmatter))
    for link in note.links:
        assert link.raw in text or link.kind == "frontmatter"
        assert link.line >= 1


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_parsing_arbitrary_unicode_never_raises(text: str) -> None:
    everything(parse_note("any.md", text))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | NOTE_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_decoding_any_bytes_never_raises(data: bytes) -> None:
    note = decode_note("any.md", data, max_bytes=300)
    everything(note)
    assert note.error is not None or len(data) <= 300


@settings(max_examples=200, deadline=None)
@given(NOTE_TEXT)
def test_line_endings_never_change_the_note(text: str) -> None:
    unix = text.replace("\r\n", "\n").replace("\r", "\n")
    assert everything(parse_note("a.md", unix.replace("\n", "\r\n"))) == everything(
        parse_note("a.md", unix)
    )


@settings(max_examples=200, deadline=None)
@given(NOTE_TEXT)
def test_masking_keeps_offsets_and_lines(text: str) -> None:
    masked = mask_code(text)
    assert len(masked) == len(text)
    assert [i for i, c in enumerate(masked) if c == "\n"] == [
        i for i, c in enumerate(text) if c == "\n"
    ]
