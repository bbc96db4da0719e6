"""Notes shaped like those of Obsidian's help vault, read as that help says Obsidian reads them.

The notes are in tests/fixtures/obsidian_help/ (its README.md names the help notes they follow).
Each test states, in our words, the rule of Obsidian's help that it checks.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from vault_bmad.cli import main
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.notes import Note, json_safe, parse_note
from vault_bmad.vault.syntax import Link

HELP_VAULT = Path(__file__).parent / "fixtures" / "obsidian_help"
TAGS = "Editing and formatting/Tags.md"
PLUGIN_TAGS = "Plugins/Tags.md"
PROPERTIES = "Editing and formatting/Properties.md"
CALLOUTS = "Editing and formatting/Callouts.md"
ADVANCED = "Editing and formatting/Advanced formatting syntax.md"
ALIASES = "Linking notes and files/Aliases.md"
EMBED = "Linking notes and files/Embed files.md"
INTERNAL = "Linking notes and files/Internal links.md"
HELP_NOTES = [TAGS, PLUGIN_TAGS, PROPERTIES, CALLOUTS, ADVANCED, ALIASES, EMBED, INTERNAL]
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@pytest.fixture(scope="module")
def index() -> VaultIndex:
    return VaultIndex.load(HELP_VAULT)


def note(index: VaultIndex, path: str) -> Note:
    found = index.get(path)
    assert found is not None, sorted(index.notes)
    return found


def targets(index: VaultIndex, path: str) -> dict[str, str | None]:
    """Each link as written in the note -> the path it resolves to."""
    return {link.raw: target for link, target in index.resolved_links(path)}


def examples(index: VaultIndex, path: str, language: str) -> list[str]:
    """The fenced code examples of one language in a note, in order."""
    text = (index.root / path).read_text(encoding="utf-8")
    return [body for lang, body in _FENCE.findall(text) if lang == language]


def the_link(index: VaultIndex, path: str, raw: str) -> Link:
    matches = [link for link in note(index, path).links if link.raw == raw]
    assert len(matches) == 1, [link.raw for link in note(index, path).links]
    return matches[0]


# --- the vault as a whole ------------------------------------------------------------------


def test_every_help_note_is_read_without_error(index: VaultIndex) -> None:
    assert sorted(index.notes) == sorted([*HELP_NOTES, "README.md"])
    assert {path: n.error for path, n in index.notes.items() if n.error} == {}


def test_check_reports_no_problem_on_the_help_notes(tmp_path: Path) -> None:
    vault = tmp_path / "help"
    shutil.copytree(HELP_VAULT, vault)
    result = CliRunner().invoke(main, ["check", str(vault), "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["notes"] == len(HELP_NOTES) + 1
    assert report["problems"] == []


# --- links -----------------------------------------------------------------------------------


def test_a_folder_path_picks_the_note_among_two_of_the_same_name(index: VaultIndex) -> None:
    # Two notes are named Tags; Tags.md links "[[Plugins/Tags|Tags]]" to the plugin's page,
    # and Properties.md's table links "[[Editing and formatting/Tags\|Tags]]" to the other.
    assert targets(index, TAGS)["[[Plugins/Tags|Tags]]"] == PLUGIN_TAGS
    table_link = the_link(index, PROPERTIES, "[[Editing and formatting/Tags\\|Tags]]")
    assert (table_link.target, table_link.alias) == ("Editing and formatting/Tags", "Tags")
    assert index.resolve(table_link, PROPERTIES) == TAGS


def test_a_name_alone_resolves_to_the_note_in_another_folder(index: VaultIndex) -> None:
    assert targets(index, PROPERTIES)["[[Aliases]]"] == ALIASES
    assert targets(index, TAGS)["[[Properties|property]]"] == PROPERTIES
    assert targets(index, CALLOUTS)["[[Internal links|Wikilinks]]"] == INTERNAL


def test_both_link_formats_reach_the_same_note(index: VaultIndex) -> None:
    # Obsidian's help: a display text goes after `|` in a wikilink and in the brackets of a
    # Markdown link. Internal links.md writes each form once in code and once outside it.
    links = targets(index, INTERNAL)
    assert links["[[Internal links|custom display text]]"] == INTERNAL
    assert links["[custom display text](Internal%20links.md)"] == INTERNAL
    wiki = the_link(index, INTERNAL, "[[Internal links|custom display text]]")
    markdown = the_link(index, INTERNAL, "[custom display text](Internal%20links.md)")
    assert wiki.alias == markdown.alias == "custom display text"


def test_links_in_code_are_not_links(index: VaultIndex) -> None:
    # Internal links.md has `[[Three laws of motion]]`, `[[Figure 1.png]]` and
    # `[[2023-01-01#^37066d]]` as inline code; Embed files.md has ![[Internal links]],
    # ![[Engelbart.jpg|100x145]] and ![[My note#^my-list-id]] in ```md blocks.
    written = {link.target for path in HELP_NOTES for link in note(index, path).links}
    for in_code in ("Three laws of motion", "Figure 1.png", "2023-01-01", "My note", "Link"):
        assert in_code not in written
    embeds = [link.raw for link in note(index, EMBED).links if link.embed]
    assert "![[Internal links]]" not in embeds
    assert "![[Engelbart.jpg|100x145]]" not in embeds
    assert "![[Internal links#^b15695]]" in embeds  # written in a block, and once outside
    # Callouts.md's ```markdown block has [[Internal link|Wikilinks]]; only the rendered
    # callout under it, with [[Internal links|Wikilinks]], is a link.
    assert "Internal link" not in {link.target for link in note(index, CALLOUTS).links}


def test_heading_and_block_links_name_what_the_note_has(index: VaultIndex) -> None:
    # Obsidian's help: `#heading` after a link's target points at a heading, `#^id` at a block.
    # Embed files.md links to two headings that Internal links.md has.
    internal_headings = {h.text for h in note(index, INTERNAL).headings}
    for raw in (
        "[[Internal links#Link to a heading in a note|headings]]",
        "[[Internal links#Link to a block in a note|blocks]]",
    ):
        link = the_link(index, EMBED, raw)
        assert index.resolve(link, EMBED) == INTERNAL
        assert link.heading in internal_headings
    # Properties.md lists its types as [[#^text-list|Text]] ... and gives each paragraph
    # its block id on the line below it ("^text-list").
    properties = note(index, PROPERTIES)
    own_blocks = [link.block for link in properties.links if link.target == ""]
    own = ["text-list", "text-list", "numbers", "checkbox", "date-time", "date-time"]
    assert own_blocks == own
    assert set(own_blocks) <= set(properties.block_ids)
    assert targets(index, PROPERTIES)["[[#^numbers|Number]]"] == PROPERTIES
    # Callouts.md links its own headings: [[#Supported types]] and [[#Customize callouts]].
    callout_headings = [h.text for h in note(index, CALLOUTS).headings]
    for heading in ("Supported types", "Customize callouts"):
        assert the_link(index, CALLOUTS, f"[[#{heading}]]").heading == heading
        assert heading in callout_headings


def test_a_block_id_is_letters_numbers_and_dashes_at_a_block_end(index: VaultIndex) -> None:
    # Obsidian's help: a block id is made of letters, digits and dashes, after a space at the
    # end of a block. Advanced formatting syntax.md ends a paragraph with " ^376b9d";
    # Internal links.md has ` ^quote-of-the-day` only as inline code, which makes no block.
    assert note(index, ADVANCED).block_ids == ("376b9d",)
    assert note(index, INTERNAL).block_ids == ()
    block_ids = {"text-list", "numbers", "checkbox", "date-time"}
    assert set(note(index, PROPERTIES).block_ids) == block_ids


def test_embeds_keep_their_subpath_and_size(index: VaultIndex) -> None:
    # Obsidian's help: an image embed takes its size after `|`; inside a table that bar is
    # escaped as `\|`. A heading subpath stays with the target.
    image = the_link(index, EMBED, "![[Engelbart.jpg#outline|100]]")
    assert (image.embed, image.target, image.heading, image.alias) == (
        True,
        "Engelbart.jpg",
        "outline",
        "100",
    )
    in_table = the_link(index, ADVANCED, "![[og-image.png\\|200]]")
    assert (in_table.embed, in_table.target, in_table.alias) == (True, "og-image.png", "200")
    audio = the_link(index, EMBED, "![[Excerpt from Mother of All Demos (1968).ogg]]")
    assert audio.target == "Excerpt from Mother of All Demos (1968).ogg"
    block = the_link(index, EMBED, "![[Internal links#^b15695]]")
    assert (block.embed, block.block, index.resolve(block, EMBED)) == (True, "b15695", INTERNAL)


def test_external_urls_are_not_links(index: VaultIndex) -> None:
    # Obsidian's help: an image on the web is embedded with a Markdown link to its URL
    # (Embed files.md: ![250](https://...)); Callouts.md links [lucide.dev](https://...).
    for path in (EMBED, CALLOUTS, ADVANCED, PROPERTIES):
        assert not [link.raw for link in note(index, path).links if "://" in link.raw]


def test_a_link_to_an_alias_is_not_resolved(index: VaultIndex) -> None:
    # Obsidian's help: a link to a note found by its alias names the note and shows the alias
    # after `|`; the alias itself is no link target. Callouts.md links [[Embedding files|embeds]],
    # an alias of Embed files.md: Obsidian leaves it unresolved.
    assert "Linking notes and files/Embedding files" in note(index, EMBED).aliases
    assert targets(index, CALLOUTS)["[[Embedding files|embeds]]"] is None
    assert index.resolve("Internal link", ALIASES) is None  # an alias of Internal links.md


# --- tags ------------------------------------------------------------------------------------


def test_tags_follow_the_tag_format_rules(index: VaultIndex) -> None:
    # Obsidian's help: a tag needs at least one non-numerical character (#1984 is no tag,
    # #y1984 is one) and has no spaces (#camelCase, #PascalCase, #snake_case, #kebab-case).
    # `#meeting`, `tag:#meeting` and `#inbox/to-read` are inline code, and "(#)" is no tag.
    tags = ("y1984", "camelCase", "PascalCase", "snake_case", "kebab-case")
    assert note(index, TAGS).tags == tags
    # Plugins/Tags.md writes its nested tags only as code: `#inbox/to-read`.
    assert note(index, PLUGIN_TAGS).tags == ()


def test_tags_property_examples(index: VaultIndex) -> None:
    # Obsidian's help: the `tags` property takes one tag, a YAML list, or a comma-separated line.
    read = [parse_note("Example.md", example).tags for example in examples(index, TAGS, "yaml")]
    assert read == [("meeting",), ("recipe", "cooking"), ("recipe", "cooking")]


def test_a_json_properties_block_is_read(index: VaultIndex) -> None:
    # Obsidian's help: properties may be written as a JSON object between the `---` lines.
    (example,) = examples(index, PROPERTIES, "json")
    parsed = parse_note("Example.md", example)
    assert parsed.error is None
    assert parsed.frontmatter == {"tags": "journal", "publish": False}
    assert parsed.tags == ("journal",)


# --- aliases and properties --------------------------------------------------------------------


def test_aliases_properties_of_the_help_notes(index: VaultIndex) -> None:
    # A comma-separated string (Internal links.md, Aliases.md) and YAML lists, one of them
    # written with its items at the key's own indent (Tags.md).
    assert note(index, INTERNAL).aliases == ("Internal link", "Link to blocks")
    assert note(index, ALIASES).aliases == ("alias", "aliases", "Add aliases to note")
    assert note(index, TAGS).aliases == ("How to/Working with tags",)
    assert note(index, PROPERTIES).aliases == (
        "front matter",
        "Advanced topics/YAML front matter",
        "metadata",
        "property",
    )
    assert note(index, CALLOUTS).aliases == ()


def test_aliases_property_examples(index: VaultIndex) -> None:
    # Obsidian's help: aliases come from an `alias` or `aliases` property, one name, a
    # comma-separated line, or a YAML list.
    parsed = [parse_note("Cat.md", example) for example in examples(index, ALIASES, "md")]
    assert [example.aliases for example in parsed] == [
        ("Kitty",),
        ("Kitty", "Mouser", "Whiskers"),
        ("Kitty", "Mouser", "Whiskers"),
    ]
    assert all([(h.level, h.text) for h in example.headings] == [(1, "Cat")] for example in parsed)


def test_links_in_properties_examples(index: VaultIndex) -> None:
    # Obsidian's help: a link in a text or list property is written in quotes:
    # link: "[[Link]]" and linklist: ["[[Link]]", "[[Link2]]"].
    (with_links,) = [e for e in examples(index, PROPERTIES, "yaml") if "[[" in e]
    links = parse_note("Example.md", with_links).links
    assert [(link.target, link.kind) for link in links] == [
        ("Link", "frontmatter"),
        ("Link", "frontmatter"),
        ("Link2", "frontmatter"),
    ]


def test_property_types_examples(index: VaultIndex) -> None:
    # Obsidian's help: property values are text, numbers, booleans, lists, dates (YYYY-MM-DD)
    # and date-times (YYYY-MM-DDTHH:MM:SS).
    by_key: dict[str, object] = {}
    for example in examples(index, PROPERTIES, "yaml"):
        parsed = parse_note("Example.md", example)
        if parsed.error is None:
            by_key.update(parsed.frontmatter)
    assert by_key["title"] == "A Quiet Harbour"  # "# a text value" is a YAML comment
    assert by_key["cast"] == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
    assert (by_key["year"], by_key["pie"], by_key["favorite"]) == (1977, 3.14, True)
    assert by_key["date"] == dt.date(2020, 8, 21)
    assert json_safe(by_key["time"]) == "2020-08-21T10:30:00"


def test_headings_outside_code_only(index: VaultIndex) -> None:
    # Callouts.md's ```css block and its `> ```md` blocks inside callouts hold no heading.
    assert [(h.level, h.text) for h in note(index, CALLOUTS).headings] == [
        (3, "Change the title"),
        (3, "Foldable callouts"),
        (3, "Nested callouts"),
        (3, "Customize callouts"),
        (3, "Supported types"),
    ]
    assert [h.text for h in note(index, ADVANCED).headings] == ["Tables", "Diagram", "Math"]
    # Properties.md writes "title: A Quiet Harbour # a text value" in a ```yaml block,
    # and "### JSON Properties" right under an embed line: a heading all the same.
    property_headings = [h.text for h in note(index, PROPERTIES).headings]
    assert "JSON Properties" in property_headings
    assert not [text for text in property_headings if "text value" in text]
