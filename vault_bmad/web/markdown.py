"""A note's Markdown as HTML for the dashboard's note page: reports and outputs read as
they do in Obsidian, tables, callouts and wikilinks included.

markdown-it-py renders CommonMark with GFM tables; raw HTML in a note is shown as text,
never run. A wikilink `[[Folder/Note|alias]]` links to that note's page when the vault
has it, and is plain text otherwise; a callout `> [!tip] Title` is a blockquote with the
classes `callout tip` and its first line as the title.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline

_CALLOUT = re.compile(r"\[!(\w+)\][+-]?\s*")

Exists = Callable[[str], bool]  # whether a vault-relative note exists


def renderer(exists: Exists) -> MarkdownIt:
    """A renderer whose wikilinks link the notes `exists` knows."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.inline.ruler.before("link", "wikilink", _wikilink_rule(exists))
    md.core.ruler.push("callout", _callouts)
    return md


def render_markdown(text: str, exists: Exists) -> str:
    return str(renderer(exists).render(text))


def note_href(rel_path: str) -> str:
    return "/notes/" + quote(rel_path)


def _wikilink_rule(exists: Exists) -> Callable[[StateInline, bool], bool]:
    def wikilink(state: StateInline, silent: bool) -> bool:
        start = state.pos
        if not state.src.startswith("[[", start):
            return False
        end = state.src.find("]]", start + 2)
        if end < 0 or "\n" in state.src[start:end]:
            return False
        if not silent:
            inner = state.src[start + 2 : end].replace("\\|", "|")
            target, _, alias = inner.partition("|")
            note = target.split("#", 1)[0].strip()
            path = note if note.lower().endswith(".md") else f"{note}.md"
            shown = alias.strip() or target.strip()
            if note and exists(path):
                link = state.push("link_open", "a", 1)
                link.attrs = {"href": note_href(path), "class": "wikilink"}
                state.push("text", "", 0).content = shown
                state.push("link_close", "a", -1)
            else:
                state.push("text", "", 0).content = shown
        state.pos = end + 2
        return True

    return wikilink


def _callouts(state: StateCore) -> None:
    """A blockquote starting `[!kind]` becomes a callout: classes, and its title apart."""
    tokens = state.tokens
    for number, token in enumerate(tokens[:-2]):
        if token.type != "blockquote_open" or tokens[number + 1].type != "paragraph_open":
            continue
        inline = tokens[number + 2]
        found = _CALLOUT.match(inline.content)
        if found is None or not inline.children:
            continue
        token.attrs = {"class": f"callout {found[1].lower()}"}
        tokens[number + 1].attrs = {"class": "callout-title"}
        first = inline.children[0]
        if first.type == "text":
            first.content = _CALLOUT.sub("", first.content, count=1)
