"""Obsidian's inline Markdown syntax: code masking, links, tags, headings, blocks, fields.

Each reader takes a body in which code has been masked (`mask_code`), so nothing
inside fenced blocks or inline code counts as a link, tag or field. Each pattern that
scans a whole body starts with a literal character, so the regex engine skips ahead
cheaply; the others run on single lines. None backtracks more than linearly.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple
from urllib.parse import unquote

LinkKind = Literal["wikilink", "markdown", "frontmatter"]


class Link(NamedTuple):
    """One link as written. `target` is the link path without subpath, URL-decoded.

    A named tuple rather than a frozen dataclass: a note has dozens of links, and a
    frozen dataclass sets each field through `object.__setattr__` (docs/benchmarks.md,
    "Vault index").
    """

    raw: str
    target: str
    kind: LinkKind
    line: int
    alias: str | None = None
    heading: str | None = None
    block: str | None = None
    embed: bool = False


_RUN_OF = {"`": re.compile("`+"), "~": re.compile("~+")}
_WIKILINK = re.compile(r"\[\[([^\[\]\n]+)\]\]")
_MD_LINK = re.compile(  # [text](dest "title"), dest in <angle brackets> or with balanced parens
    r"\[([^\[\]\n]*)\]\([ \t]*(<[^<>\n]+>|(?:[^()\s]|\([^()\s]*\))+)"
    r"(?:[ \t]+(?:\"[^\"\n]*\"|'[^'\n]*'|\([^()\n]*\)))?[ \t]*\)"
)
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_TAG = re.compile(r"#([\w/\-]+)")
_HEADING = re.compile(r"\n {0,3}(#{1,6})(?:[ \t]+([^\n]*))?(?![^\n])")  # on "\n" + text
_BLOCK_ID = re.compile(r"\^([A-Za-z0-9-]+)[ \t]*$", re.MULTILINE)
_LINE_FIELD = re.compile(  # optional list/quote marker, optional **bold** key, "::", value
    r"[ \t]*(?:[-*+][ \t]+|\d+[.)][ \t]+|>[ \t]*)?"
    r"(\*\*|__)?([^\s:*_\[\]()>][^:\[\]()\n]*?)(?(1)\1)::[ \t]*(.*)"
)
_BRACKET_FIELD_KEY = re.compile(r"[\[(]([^\[\]()\n:]+?)::")
_CLOSER = {"[": "]", "(": ")"}


def mask_code(text: str) -> str:
    """Blank out fenced code blocks and inline code, keeping offsets and newlines.

    Fences may sit in callouts or list items (`> ```` or indented); an unclosed fence
    runs to the end of the note, as in CommonMark.
    """
    if "`" not in text and "~~~" not in text:
        return text
    parts: list[str] = []
    pos = search_from = 0
    while (run := _next_run(text, ("```", "~~~"), search_from)) is not None:
        run_start, run_end = run
        line_start = text.rfind("\n", 0, run_start) + 1
        line_end = _line_end(text, run_end)
        fence = text[run_start:run_end]
        if not _opens_fence(text, line_start, run, line_end):
            search_from = run_end
            continue
        close_end = _closing_fence(text, fence, line_end)
        parts.append(_mask_inline(text[pos:line_start]))
        parts.append(_blank(text[line_start:close_end]))
        pos = search_from = close_end
    parts.append(_mask_inline(text[pos:]))
    return "".join(parts)


def _next_run(text: str, openers: tuple[str, ...], pos: int) -> tuple[int, int] | None:
    """(start, end) of the next whole run of a fence character that begins with an opener."""
    hits = [hit for opener in openers if (hit := text.find(opener, pos)) != -1]
    if not hits:
        return None
    start = min(hits)
    end = _RUN_OF[text[start]].match(text, start)
    assert end is not None  # the opener itself is a run
    return start, end.end()


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end == -1 else end


def _opens_fence(text: str, line_start: int, run: tuple[int, int], line_end: int) -> bool:
    """Only quote markers and blanks before the run; no backtick after a backtick fence."""
    run_start, run_end = run
    if text[line_start:run_start].strip(" \t>"):
        return False
    return text[run_start] != "`" or "`" not in text[run_end:line_end]


def _closing_fence(text: str, fence: str, after: int) -> int:
    """Offset just past the line closing `fence`, or the end of the text."""
    while (run := _next_run(text, (fence,), after)) is not None:
        run_start, run_end = run
        line_start = text.rfind("\n", 0, run_start) + 1
        line_end = _line_end(text, run_end)
        if not text[line_start:run_start].strip(" \t>") and not text[run_end:line_end].strip():
            return line_end
        after = run_end
    return len(text)


def _mask_inline(text: str) -> str:
    """Blank inline code spans: a run of N backticks up to the next run of exactly N."""
    if "`" not in text:
        return text
    runs = [(m.start(), m.end()) for m in _RUN_OF["`"].finditer(text)]
    next_same: list[int | None] = [None] * len(runs)
    last_seen: dict[int, int] = {}
    for k in range(len(runs) - 1, -1, -1):
        start, end = runs[k]
        if k + 1 < len(runs) and text.find("\n", end, runs[k + 1][0]) != -1:
            last_seen = {}  # code spans do not cross lines here
        next_same[k] = last_seen.get(end - start)
        last_seen[end - start] = k
    parts: list[str] = []
    pos = k = 0
    while k < len(runs):
        closer = next_same[k]
        if closer is None:
            k += 1  # an unmatched run is literal text
            continue
        start, end = runs[k][0], runs[closer][1]
        parts += [text[pos:start], " " * (end - start)]
        pos, k = end, closer + 1
    parts.append(text[pos:])
    return "".join(parts)


def _blank(text: str) -> str:
    return "\n".join(" " * len(line) for line in text.split("\n"))


def _line_numbers(text: str, offsets: list[int], first_line: int) -> list[int]:
    """1-based lines of ascending `offsets`, counting newlines once in total."""
    lines: list[int] = []
    line, last = first_line, 0
    for offset in offsets:
        line += text.count("\n", last, offset)
        last = offset
        lines.append(line)
    return lines


def wikilinks_in(text: str, line: int, kind: LinkKind = "wikilink") -> list[Link]:
    """Wikilinks in a single string (such as a property value), all on `line`."""
    if "[[" not in text:
        return []
    return [_wikilink(text, m, line, kind) for m in _WIKILINK.finditer(text)]


def body_links(masked: str, first_line: int) -> list[Link]:
    """Wikilinks and internal Markdown links in a masked body, in order of appearance."""
    if "[" not in masked:
        return []
    found: list[tuple[int, bool, re.Match[str]]] = []
    if "[[" in masked:
        found += [(m.start(), True, m) for m in _WIKILINK.finditer(masked)]
    if "](" in masked:
        found += [(m.start(), False, m) for m in _MD_LINK.finditer(masked)]
        found.sort(key=lambda item: item[0])
    lines = _line_numbers(masked, [start for start, _, _ in found], first_line)
    links = []
    for (_, is_wikilink, match), line in zip(found, lines, strict=True):
        if is_wikilink:
            links.append(_wikilink(masked, match, line))
        elif (link := _markdown_link(masked, match, line)) is not None:
            links.append(link)
    return links


def _is_embed(text: str, match: re.Match[str]) -> bool:
    return match.start() > 0 and text[match.start() - 1] == "!"


def _wikilink(text: str, match: re.Match[str], line: int, kind: LinkKind = "wikilink") -> Link:
    inner = match.group(1)
    if "\\|" in inner:
        inner = inner.replace("\\|", "|")  # the escaped pipe of a link inside a table
    target, _, alias = inner.partition("|")
    path, heading, block = split_subpath(target)
    embed = _is_embed(text, match)
    raw = ("!" if embed else "") + match.group(0)
    return Link(raw, path.strip(), kind, line, alias.strip() or None, heading, block, embed)


def _markdown_link(text: str, match: re.Match[str], line: int) -> Link | None:
    href = match.group(2)
    if href.startswith("<"):
        href = href[1:-1]
    if _SCHEME.match(href):
        return None  # an external URL, mailto:, obsidian:// and the like
    path, heading, block = split_subpath(unquote(href) if "%" in href else href)
    embed = _is_embed(text, match)
    raw = ("!" if embed else "") + match.group(0)
    alias = match.group(1).strip() or None
    return Link(raw, path.strip(), "markdown", line, alias, heading, block, embed)


def split_subpath(target: str) -> tuple[str, str | None, str | None]:
    """Split `Note#Heading` or `Note#^block` into (path, heading, block)."""
    path, hash_sign, sub = target.partition("#")
    if not hash_sign:
        return path, None, None
    if sub.startswith("^"):
        return path, None, sub[1:].strip() or None
    return path, sub.strip() or None, None


def _after_space(text: str, offset: int) -> bool:
    return offset == 0 or text[offset - 1].isspace()


def inline_tags(masked: str) -> tuple[str, ...]:
    """`#tag` and `#nested/tag` after a space or at a line start; `#123` is not a tag."""
    if "#" not in masked:
        return ()
    tags = []
    for match in _TAG.finditer(masked):
        tag = match.group(1).rstrip("/")
        if tag and not tag.isdigit() and _after_space(masked, match.start()):
            tags.append(tag)
    return tuple(tags)


def headings(masked: str) -> list[tuple[int, str, int]]:
    """(level, text, line within the body) for each ATX heading."""
    if "#" not in masked:
        return []
    text = "\n" + masked  # a literal first character lets the regex engine skip ahead
    matches = list(_HEADING.finditer(text))
    lines = _line_numbers(text, [m.start() for m in matches], 1)
    return [
        (len(m.group(1)), _heading_text(m.group(2) or ""), line)
        for m, line in zip(matches, lines, strict=True)
    ]


def _heading_text(text: str) -> str:
    """Drop a closing `###` sequence, which needs a space before it."""
    text = text.strip(" \t")
    if text.endswith("#"):
        bare = text.rstrip("#")
        if not bare or bare[-1] in " \t":
            text = bare.rstrip(" \t")
    return text


def block_ids(masked: str) -> tuple[str, ...]:
    """Block ids: a `^id` at the end of a line, after a space or alone on its line."""
    if "^" not in masked:
        return ()
    return tuple(m.group(1) for m in _BLOCK_ID.finditer(masked) if _after_space(masked, m.start()))


def inline_fields(masked: str) -> dict[str, tuple[str, ...]]:
    """Dataview fields: `key:: value` on its own line, `[key:: value]` and `(key:: value)`."""
    if "::" not in masked:
        return {}
    found: dict[str, list[str]] = {}
    for line in _lines_containing(masked, "::"):
        line_field = _LINE_FIELD.fullmatch(line)
        if line_field is not None:
            found.setdefault(line_field.group(2).strip(), []).append(line_field.group(3).strip())
        if "[" in line or "(" in line:
            for key, value in _bracket_fields(line):
                found.setdefault(key, []).append(value)
    return {key: tuple(values) for key, values in found.items()}


def _lines_containing(text: str, needle: str) -> list[str]:
    lines: list[str] = []
    pos = 0
    while (hit := text.find(needle, pos)) != -1:
        start = text.rfind("\n", 0, hit) + 1
        end = _line_end(text, hit)
        lines.append(text[start:end])
        pos = end + 1
    return lines


def _bracket_fields(line: str) -> list[tuple[str, str]]:
    """`[key:: value]` and `(key:: value)`; the value may hold nested `[[links]]`."""
    fields = []
    pos = 0
    while (match := _BRACKET_FIELD_KEY.search(line, pos)) is not None:
        opener = line[match.start()]
        end = _matching_close(line, match.end(), opener, _CLOSER[opener])
        if end is None:
            pos = match.start() + 1
            continue
        fields.append((match.group(1).strip(), line[match.end() : end].strip()))
        pos = end + 1
    return fields


def _matching_close(line: str, pos: int, opener: str, closer: str) -> int | None:
    depth = 0
    for offset in range(pos, len(line)):
        char = line[offset]
        if char == opener:
            depth += 1
        elif char == closer:
            if depth == 0:
                return offset
            depth -= 1
    return None
