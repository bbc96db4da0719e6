"""Links as Obsidian reads them (every form, code excluded) and resolves them."""

from __future__ import annotations

import unicodedata

import pytest

from vault_bmad.vault.links import LinkResolver
from vault_bmad.vault.notes import parse_note
from vault_bmad.vault.syntax import Link


def only_link(text: str) -> Link:
    links = parse_note("Source.md", text).links
    assert len(links) == 1, links
    return links[0]


# --- reading links -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "target", "alias", "heading", "block", "embed"),
    [
        ("see [[Note]] here", "Note", None, None, None, False),
        ("[[Note|the alias]]", "Note", "the alias", None, None, False),
        ("| a | [[Note\\|alias]] |", "Note", "alias", None, None, False),
        ("[[Note#Heading|alias]]", "Note", "alias", "Heading", None, False),
        ("[[Note#Part#Sub]]", "Note", None, "Part#Sub", None, False),
        ("[[Note#^block-1]]", "Note", None, None, "block-1", False),
        ("![[embed]]", "embed", None, None, None, True),
        ("![[image.png|100]]", "image.png", "100", None, None, True),
        ("![[Note#Heading]]", "Note", None, "Heading", None, True),
        ("[[#Heading]]", "", None, "Heading", None, False),
        ("[[#^blk]]", "", None, None, "blk", False),
        ("[[Folder/Note]]", "Folder/Note", None, None, None, False),
        ("[[note.md]]", "note.md", None, None, None, False),
        ("[[ Spaced Note | alias ]]", "Spaced Note", "alias", None, None, False),
        ("[text](My%20Note.md)", "My Note.md", "text", None, None, False),
        ("[text](<My Note.md>)", "My Note.md", "text", None, None, False),
        ("[text](../Other.md)", "../Other.md", "text", None, None, False),
        ("[text](Note.md#Some%20Heading)", "Note.md", "text", "Some Heading", None, False),
        ("[text](Note.md#^abc)", "Note.md", "text", None, "abc", False),
        ('[text](Note.md "a title")', "Note.md", "text", None, None, False),
        ("[text](Note.md 'a title')", "Note.md", "text", None, None, False),
        ("[x](Note%20(1).md)", "Note (1).md", "x", None, None, False),
        ("![alt](pics/cat.png)", "pics/cat.png", "alt", None, None, True),
        ("[](#Heading)", "", None, "Heading", None, False),
    ],
)
def test_every_link_form(
    text: str,
    target: str,
    alias: str | None,
    heading: str | None,
    block: str | None,
    embed: bool,
) -> None:
    link = only_link(text)
    assert (link.target, link.alias, link.heading, link.block, link.embed) == (
        target,
        alias,
        heading,
        block,
        embed,
    )


def test_raw_keeps_the_text_as_written() -> None:
    note = parse_note("a.md", "![[Pic.png|100]] and [t](<A B.md>) and [[X\\|y]]")
    assert [link.raw for link in note.links] == ["![[Pic.png|100]]", "[t](<A B.md>)", "[[X\\|y]]"]
    assert [link.kind for link in note.links] == ["wikilink", "markdown", "wikilink"]


@pytest.mark.parametrize(
    "text",
    [
        "[site](https://example.com/Note.md)",
        "[mail](mailto:someone@example.com)",
        "[open](obsidian://open?vault=v&file=Note)",
        "[ftp](ftp://host/file.md)",
        "<https://example.com/page>",
        "[win](C:/Users/me/Note.md)",
    ],
)
def test_external_urls_are_not_links(text: str) -> None:
    assert parse_note("a.md", text).links == ()


@pytest.mark.parametrize(
    "text",
    [
        "```\n[[InFence]]\n```",
        "~~~\n[[InTilde]]\n~~~",
        "````md\n```\n[[Nested]]\n```\n````",
        "   ```python\n[[Indented]]\n   ```",
        "> ```\n> [[InCallout]]\n> ```",
        "- item\n    ```\n    [[InList]]\n    ```",
        "`[[InlineCode]]`",
        "``code with ` and [[Link]]``",
        "```\nnever closed\n[[AfterOpenFence]]",
        "`[md](Note.md)`",
    ],
)
def test_links_in_code_are_not_links(text: str) -> None:
    assert parse_note("a.md", text).links == ()


def test_text_around_code_keeps_its_links() -> None:
    text = "[[Before]]\n```\n[[Inside]]\n```\n[[After]] `[[Code]]` [[Tail]]"
    note = parse_note("a.md", text)
    assert [(link.target, link.line) for link in note.links] == [
        ("Before", 1),
        ("After", 5),
        ("Tail", 5),
    ]


def test_backticks_that_do_not_open_a_fence() -> None:
    # a backtick fence's info string cannot hold a backtick: this is inline code
    assert [link.target for link in parse_note("a.md", "```js``` [[Real]]").links] == ["Real"]
    # an unmatched backtick is literal text
    assert [link.target for link in parse_note("a.md", "a ` b [[Real]]").links] == ["Real"]
    # a tilde fence needs three tildes
    assert [link.target for link in parse_note("a.md", "~~\n[[Real]]\n~~").links] == ["Real"]


def test_link_lines_count_from_the_file_start() -> None:
    text = "---\ntype: task\nagent: '[[Architect]]'\n---\n# Title\n\nsee [[Body Link]]\n"
    note = parse_note("Tasks/T.md", text)
    assert [(link.target, link.kind, link.line) for link in note.links] == [
        ("Body Link", "wikilink", 7),
        ("Architect", "frontmatter", 3),
    ]


def test_frontmatter_wikilinks_in_lists_and_nested_values() -> None:
    text = (
        "---\n"
        "depends_on:\n"
        '  - "[[Write the PRD]]"\n'
        '  - "[[Brief|the brief]]"\n'
        "meta:\n"
        '  up: "[[Parent#Part]]"\n'
        "plain: no link\n"
        "unquoted: [[Nested List]]\n"  # YAML reads this as a list in a list, not a link
        "---\n"
    )
    links = parse_note("a.md", text).links
    assert [(link.target, link.alias, link.heading, link.line) for link in links] == [
        ("Write the PRD", None, None, 3),
        ("Brief", "the brief", None, 4),
        ("Parent", None, "Part", 6),
    ]
    assert all(link.kind == "frontmatter" for link in links)


# --- resolving -----------------------------------------------------------------------------

VAULT = [
    "Note.md",
    "Folder/Note.md",
    "Folder/Deep/Only Deep.md",
    "Other/Shared.md",
    "Projects/Shared.md",
    "Projects/Alpha/Shared.md",
    "Docs/Other.md",
    "Docs/Sub/Child.md",
    "My Note.md",
    "attachments/image.png",
    "Archive/2023/Report.md",
    "Reports/Report.md",
]


@pytest.fixture
def resolver() -> LinkResolver:
    return LinkResolver(VAULT)


@pytest.mark.parametrize(
    ("linkpath", "source", "expected"),
    [
        ("Only Deep", "Note.md", "Folder/Deep/Only Deep.md"),
        ("only deep", "Note.md", "Folder/Deep/Only Deep.md"),  # names ignore case
        ("ONLY DEEP.MD", "Note.md", "Folder/Deep/Only Deep.md"),  # with an extension
        ("Deep/Only Deep", "Note.md", "Folder/Deep/Only Deep.md"),  # a path suffix
        ("/Folder/Deep/Only Deep", "Note.md", "Folder/Deep/Only Deep.md"),  # from the root
        ("image.png", "Note.md", "attachments/image.png"),  # attachments by full name
        ("My Note.md", "Docs/Other.md", "My Note.md"),  # decoded Markdown link path
        ("Note", "Folder/Deep/Only Deep.md", "Note.md"),  # exact path first
        ("Folder/Note", "Other/Shared.md", "Folder/Note.md"),
        ("Shared", "Projects/Alpha/Shared.md", "Projects/Alpha/Shared.md"),  # itself
        ("Shared", "Projects/x.md", "Projects/Shared.md"),  # same folder next
        ("Shared", "Docs/Other.md", "Other/Shared.md"),  # then the shortest path
        ("Alpha/Shared", "Note.md", "Projects/Alpha/Shared.md"),
        ("Report", "Archive/2023/x.md", "Archive/2023/Report.md"),
        ("Report", "Note.md", "Reports/Report.md"),
        ("../Other.md", "Docs/Sub/Child.md", "Docs/Other.md"),  # relative Markdown link
        ("./Child", "Docs/Sub/x.md", "Docs/Sub/Child.md"),
        ("../Docs/Other", "Folder/Note.md", "Docs/Other.md"),
        ("", "Docs/Other.md", "Docs/Other.md"),  # [[#Heading]] points at its note
    ],
)
def test_resolution(resolver: LinkResolver, linkpath: str, source: str, expected: str) -> None:
    assert resolver.resolve(linkpath, source) == expected


@pytest.mark.parametrize(
    ("linkpath", "source"),
    [
        ("Missing", "Note.md"),
        ("image", "Note.md"),  # an attachment needs its extension
        ("Deep/Note", "Note.md"),  # a suffix must match whole folders
        ("older/Note", "Note.md"),
        ("../Other.md", "Note.md"),  # relative, leaving the vault
        ("../../Other.md", "Docs/Sub/Child.md"),
        ("./Other", "Note.md"),  # relative links resolve only relative to the note
        ("Folder/", "Note.md"),
    ],
)
def test_unresolved(resolver: LinkResolver, linkpath: str, source: str) -> None:
    assert resolver.resolve(linkpath, source) is None


def test_a_bare_alias_stays_unresolved() -> None:
    note = parse_note("Agents/Architect.md", "---\naliases: [Winston]\n---\n")
    resolver = LinkResolver([note.path])
    assert resolver.resolve("Winston", "Tasks/T.md") is None
    assert resolver.resolve("Architect", "Tasks/T.md") == "Agents/Architect.md"


def test_unicode_forms_match() -> None:
    decomposed = unicodedata.normalize("NFD", "Café.md")  # how macOS stores the name
    resolver = LinkResolver([decomposed])
    assert resolver.resolve("café", "x.md") == decomposed
    assert resolver.resolve(unicodedata.normalize("NFD", "CAFÉ"), "x.md") == decomposed


def test_add_and_remove_follow_the_vault(resolver: LinkResolver) -> None:
    assert resolver.resolve("Shared", "Docs/Other.md") == "Other/Shared.md"
    resolver.remove("Other/Shared.md")
    assert resolver.resolve("Shared", "Docs/Other.md") == "Projects/Shared.md"
    resolver.remove("Projects/Shared.md")
    resolver.remove("Projects/Alpha/Shared.md")
    assert resolver.resolve("Shared", "Docs/Other.md") is None
    assert "Other/Shared.md" not in resolver
    resolver.add("Docs/Shared.md")
    assert resolver.resolve("Shared", "Docs/Other.md") == "Docs/Shared.md"
    assert "docs/shared.md" in resolver
    resolver.remove("never/added.md")  # forgetting an unknown path is harmless
    assert len(resolver) == len(VAULT) - 2


def test_paths_differing_only_in_case() -> None:
    resolver = LinkResolver(["A/Note.md", "A/note.md"])
    assert resolver.resolve("A/Note", "x.md") in {"A/Note.md", "A/note.md"}
    resolver.remove("A/Note.md")
    assert resolver.resolve("A/Note", "x.md") == "A/note.md"
    resolver.remove("A/note.md")
    assert resolver.resolve("A/Note", "x.md") is None
