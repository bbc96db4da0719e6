"""Parse one note as Obsidian reads it: frontmatter, headings, block ids, tags, fields, links.

`parse_note` is pure and never raises: whatever the text, it returns a `Note`, with
`error` set when the note is unreadable in part (broken YAML, binary data, too big).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from posixpath import basename, splitext
from typing import Any

import yaml

from vault_bmad.vault import syntax
from vault_bmad.vault.syntax import Link

try:  # libyaml is several times faster; PyYAML falls back to pure Python without it.
    from yaml import CSafeLoader as YamlLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as YamlLoader  # type: ignore[assignment]

MAX_NOTE_BYTES = 5 * 1024 * 1024
_BINARY_SNIFF = 8192
_FENCE_CLOSE = re.compile(r"^---[ \t]*$", re.MULTILINE)
_TOP_LEVEL_KEY = re.compile(r"^([^\s#:-][^:\n]*):(?:[ \t]|$)", re.MULTILINE)


@dataclass(frozen=True)
class Heading:
    level: int
    text: str
    line: int


@dataclass(frozen=True)
class Note:
    path: str  # vault-relative, with "/"
    frontmatter: dict[str, Any] = field(default_factory=dict)
    body: str = ""
    body_line: int = 1  # line of the file where the body starts
    headings: tuple[Heading, ...] = ()
    block_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    links: tuple[Link, ...] = ()
    error: str | None = None
    error_line: int | None = None
    property_lines: dict[str, int] = field(default_factory=dict)  # top-level key -> line

    @property
    def name(self) -> str:
        """The file name without extension, which is what `[[links]]` use."""
        return splitext(basename(self.path))[0]

    @property
    def type(self) -> str | None:
        value = self.frontmatter.get("type")
        return value.strip().lower() if isinstance(value, str) else None


def decode_note(
    path: str, data: bytes, max_bytes: int = MAX_NOTE_BYTES, size: int | None = None
) -> Note:
    """Turn a file's bytes into a Note, refusing binary data and notes over `max_bytes`.

    `size` is the file's real size when `data` was read only up to the limit.
    """
    size = len(data) if size is None else size
    if size > max_bytes:
        size_mb = size / (1024 * 1024)
        limit_mb = max_bytes / (1024 * 1024)
        return Note(path, error=f"note is {size_mb:.1f} MiB, over the {limit_mb:.0f} MiB limit")
    if b"\x00" in data[:_BINARY_SNIFF]:
        return Note(path, error="note holds binary data, not text")
    return parse_note(path, data.decode("utf-8", errors="replace"))


def parse_note(path: str, text: str) -> Note:
    """Parse a note's text. Never raises."""
    text = text.removeprefix("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    raw_fm, body, body_line, fm_error = split_frontmatter(text)
    frontmatter: dict[str, Any] = {}
    error, error_line = fm_error, (1 if fm_error else None)
    if raw_fm is not None:
        frontmatter, error, error_line = load_frontmatter(raw_fm)
    masked = syntax.mask_code(body)
    links = syntax.body_links(masked, body_line) + frontmatter_links(frontmatter, raw_fm)
    inline_tags = syntax.inline_tags(masked)
    return Note(
        path=path,
        frontmatter=frontmatter,
        body=body,
        body_line=body_line,
        headings=tuple(
            Heading(level, title, line + body_line - 1)
            for level, title, line in syntax.headings(masked)
        ),
        block_ids=syntax.block_ids(masked),
        tags=_unique(frontmatter_tags(frontmatter) + inline_tags),
        fields=syntax.inline_fields(masked),
        links=tuple(links),
        error=error,
        error_line=error_line,
        property_lines=property_lines(raw_fm) if frontmatter else {},
    )


def split_frontmatter(text: str) -> tuple[str | None, str, int, str | None]:
    """Return (raw YAML or None, body, first body line, error).

    As in Obsidian, frontmatter exists only when the very first line is `---` and a
    later line closes it; otherwise the whole text is body.
    """
    if not text.startswith("---") or text[3:4] not in ("\n", " ", "\t", ""):
        return None, text, 1, None
    first_break = text.find("\n")
    if first_break == -1 or text[:first_break].strip() != "---":
        return None, text, 1, None
    close = _FENCE_CLOSE.search(text, first_break + 1)
    if close is None:
        return None, text, 1, "frontmatter opened with --- on line 1 is never closed"
    raw = text[first_break + 1 : close.start()]
    body_start = close.end() + 1 if close.end() < len(text) else close.end()
    body_line = text.count("\n", 0, body_start) + 1
    return raw, text[body_start:], body_line, None


def load_frontmatter(raw: str) -> tuple[dict[str, Any], str | None, int | None]:
    """Load YAML frontmatter; return (mapping, error, file line of the error)."""
    try:
        loaded = yaml.load(raw, Loader=YamlLoader)  # a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        last_line = raw.count("\n") + 1  # the parser may notice a problem past the end
        line = min(mark.line + 2, last_line) if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return {}, f"broken YAML in frontmatter: {problem}", line
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. a bad date value
        return {}, f"broken YAML in frontmatter: {exc}", 1
    if loaded is None:
        return {}, None, None
    if not isinstance(loaded, dict):
        kind = type(loaded).__name__
        return {}, f"frontmatter must be a mapping of keys to values, not a {kind}", 2
    return {str(key): value for key, value in loaded.items()}, None, None


def property_lines(raw: str | None) -> dict[str, int]:
    """The file line of each top-level frontmatter key, for messages that point at it."""
    if not raw:
        return {}
    return {
        match.group(1).strip().strip("\"'"): raw.count("\n", 0, match.start()) + 2
        for match in _TOP_LEVEL_KEY.finditer(raw)
    }


def frontmatter_tags(frontmatter: dict[str, Any]) -> tuple[str, ...]:
    """Tags from the `tags` (or `tag`) property: a list, or a comma/space separated string."""
    value = frontmatter.get("tags", frontmatter.get("tag"))
    items: list[Any] = value if isinstance(value, list) else [value]
    tags: list[str] = []
    for item in items:
        if isinstance(item, str | int | float) and not isinstance(item, bool):
            tags += [t.lstrip("#") for t in re.split(r"[,\s]+", str(item)) if t.lstrip("#")]
    return tuple(tags)


def frontmatter_links(frontmatter: dict[str, Any], raw: str | None) -> list[Link]:
    """Wikilinks written in property values, as Obsidian indexes them."""
    if not raw:
        return []
    links: list[Link] = []
    for value in _strings(frontmatter):
        for link in syntax.wikilinks_in(value, line=1):
            offset = raw.find(link.raw)
            line = raw.count("\n", 0, offset) + 2 if offset >= 0 else 1
            links.append(replace(link, kind="frontmatter", line=line))
    return links


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if "[[" in value else []
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))
