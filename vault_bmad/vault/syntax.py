"""Obsidian's inline Markdown syntax: code masking, links, tags, headings, blocks, fields.

Each function reads a body in which code has been masked (`mask_code`), so nothing
inside fenced blocks or inline code counts as a link, tag or field.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass
from urllib.parse import unquote


@dataclass(frozen=True)
class Link:
    """One link as written. `target` is the link path without subpath, URL-decoded."""

    raw: str
    target: str
    kind: str  # "wikilink" | "markdown" | "frontmatter"
    line: int
    alias: str | None = None
    heading: str | None = None
    block: str | None = None
    embed: bool = False


_FENCE_OPEN = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)
_INLINE_CODE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)")
_WIKILINK = re.compile(r"(!?)\[\[([^\[\]\n]+?)\]\]")
_MD_LINK = re.compile(r"(!?)\[([^\[\]\n]*)\]\(\s*(<[^<>\n]+>|[^()\s]+)(?:\s+\"[^\"\n]*\")?\s*\)")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_TAG = re.compile(r"(?:^|(?<=\s))#([\w/\-]+)")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)
_BLOCK_ID = re.compile(r"(?:^|\s)\^([A-Za-z0-9-]+)[ \t]*$", re.MULTILINE)
_LINE_FIELD = re.compile(  # optional list/quote marker, optional **bold** key, "::", value
    r"^[ \t]*(?:[-*+][ \t]+|\d+[.)][ \t]+|>[ \t]*)?"
    r"(\*\*|__)?([^\s:*_\[\]()>][^:\[\]()\n]*?)(?(1)\1)::[ \t]*(.*)$",
    re.MULTILINE,
)
_BRACKET_FIELD = re.compile(r"[\[(]([^\[\]()\n:]+?)::[ \t]*([^\[\]()\n]*)[\])]")


def mask_code(text: str) -> str:
    """Blank out fenced code blocks and inline code, keeping offsets and newlines."""
    parts: list[str] = []
    pos = 0
    while (opened := _FENCE_OPEN.search(text, pos)) is not None:
        fence = opened.group(1)
        closing_fence = rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$"
        closer = re.compile(closing_fence, re.MULTILINE)
        line_end = text.find("\n", opened.end())
        closed = closer.search(text, line_end + 1) if line_end != -1 else None
        end = closed.end() if closed else len(text)
        parts.append(_mask_inline(text[pos : opened.start()]))
        parts.append(_blank(text[opened.start() : end]))
        pos = end
    parts.append(_mask_inline(text[pos:]))
    return "".join(parts)


def _mask_inline(text: str) -> str:
    return _INLINE_CODE.sub(lambda m: _blank(m.group(0)), text) if "`" in text else text


def _blank(text: str) -> str:
    return re.sub(r"[^\n]", " ", text)


class _Lines:
    """Maps an offset in a text to its 1-based line, offset by where the text starts."""

    def __init__(self, text: str, first_line: int) -> None:
        self.starts = [0, *(m.end() for m in re.finditer("\n", text))]
        self.first_line = first_line

    def at(self, offset: int) -> int:
        return bisect_right(self.starts, offset) - 1 + self.first_line


def wikilinks_in(text: str, line: int) -> list[Link]:
    """Wikilinks in a single string (such as a property value), all on `line`."""
    return [_wikilink(m, line) for m in _WIKILINK.finditer(text)]


def body_links(masked: str, first_line: int) -> list[Link]:
    """Wikilinks and internal Markdown links in a masked body, in order of appearance."""
    if "[" not in masked:
        return []
    lines = _Lines(masked, first_line)
    found = [(m.start(), _wikilink(m, lines.at(m.start()))) for m in _WIKILINK.finditer(masked)]
    for match in _MD_LINK.finditer(masked):
        link = _markdown_link(match, lines.at(match.start()))
        if link is not None:
            found.append((match.start(), link))
    return [link for _, link in sorted(found, key=lambda item: item[0])]


def _wikilink(match: re.Match[str], line: int) -> Link:
    inner = match.group(2).replace("\\|", "|")
    target, _, alias = inner.partition("|")
    path, heading, block = split_subpath(target)
    return Link(
        raw=match.group(0),
        target=path.strip(),
        kind="wikilink",
        line=line,
        alias=alias.strip() or None,
        heading=heading,
        block=block,
        embed=match.group(1) == "!",
    )


def _markdown_link(match: re.Match[str], line: int) -> Link | None:
    href = match.group(3)
    if href.startswith("<"):
        href = href[1:-1]
    if not href or _SCHEME.match(href):
        return None  # an external URL, mailto:, obsidian:// and the like
    path, heading, block = split_subpath(unquote(href))
    return Link(
        raw=match.group(0),
        target=path.strip(),
        kind="markdown",
        line=line,
        alias=match.group(2).strip() or None,
        heading=heading,
        block=block,
        embed=match.group(1) == "!",
    )


def split_subpath(target: str) -> tuple[str, str | None, str | None]:
    """Split `Note#Heading` or `Note#^block` into (path, heading, block)."""
    path, hash_sign, sub = target.partition("#")
    if not hash_sign:
        return path, None, None
    if sub.startswith("^"):
        return path, None, sub[1:].strip() or None
    return path, sub.strip() or None, None


def inline_tags(masked: str) -> tuple[str, ...]:
    """`#tag` and `#nested/tag` in the body. A tag needs one non-digit; `#123` is not one."""
    if "#" not in masked:
        return ()
    tags = (m.group(1).rstrip("/") for m in _TAG.finditer(masked))
    return tuple(tag for tag in tags if tag and not tag.isdigit())


def headings(masked: str) -> list[tuple[int, str, int]]:
    """(level, text, line within the body) for each ATX heading."""
    if "#" not in masked:
        return []
    lines = _Lines(masked, 1)
    return [
        (len(m.group(1)), m.group(2).strip(), lines.at(m.start()))
        for m in _HEADING.finditer(masked)
    ]


def block_ids(masked: str) -> tuple[str, ...]:
    """Block ids: a `^id` at the end of a line."""
    return tuple(m.group(1) for m in _BLOCK_ID.finditer(masked)) if "^" in masked else ()


def inline_fields(masked: str) -> dict[str, tuple[str, ...]]:
    """Dataview `key:: value` fields, on their own line or in [brackets] or (parens)."""
    if "::" not in masked:
        return {}
    found: dict[str, list[str]] = {}
    for match in _LINE_FIELD.finditer(masked):
        found.setdefault(match.group(2).strip(), []).append(match.group(3).strip())
    for match in _BRACKET_FIELD.finditer(masked):
        found.setdefault(match.group(1).strip(), []).append(match.group(2).strip())
    return {key: tuple(values) for key, values in found.items()}
