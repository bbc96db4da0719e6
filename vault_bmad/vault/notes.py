"""Parse one note as Obsidian reads it: frontmatter, headings, block ids, tags, fields, links.

`parse_note` is pure and never raises: whatever the text, it returns a `Note`, with
`error` set when the note is unreadable in part (broken YAML, binary data, too big).
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import re
from dataclasses import dataclass, field, replace
from functools import cached_property
from posixpath import basename, splitext
from typing import Any

import yaml

from vault_bmad.vault import syntax
from vault_bmad.vault.syntax import Link

try:  # libyaml is several times faster; PyYAML falls back to pure Python without it.
    from yaml import CSafeLoader as YamlLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as YamlLoader  # type: ignore[assignment]

SAFE_YAML_LOADER = YamlLoader  # what every module that reads YAML from notes uses

MAX_NOTE_BYTES = 5 * 1024 * 1024
MAX_FRONTMATTER_DEPTH = 50
MAX_FRONTMATTER_VALUES = 10_000  # YAML aliases can make a short text expand enormously
HEAD_BYTES = 64 * 1024  # of a note over the size limit, what is read for its frontmatter
_WALK_ABOVE_CHARS = 65_536  # frontmatter this long is checked for its number of values
_BINARY_SNIFF = 8192
_TAG_SEPARATORS = re.compile(r"[,\s]+")
_ALIAS_SEPARATOR = re.compile(",")
_TOP_LEVEL_KEY = re.compile(r"^([^\s#:-][^:\n]*):(?:[ \t]|$)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Heading:
    level: int
    text: str
    line: int  # line of the file


@dataclass(frozen=True, slots=True)
class BodySyntax:
    """What a note's body says, outside code: read once, when first asked for."""

    headings: tuple[Heading, ...] = ()
    block_ids: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()  # inline tags only
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False)
    links: tuple[Link, ...] = ()  # links in the body only


def read_body(body: str, body_line: int = 1) -> BodySyntax:
    """Headings, block ids, inline tags, Dataview fields and links of a body. Never raises."""
    masked = syntax.mask_code(body)
    return BodySyntax(
        headings=tuple(
            Heading(level, title, line + body_line - 1)
            for level, title, line in syntax.headings(masked)
        ),
        block_ids=syntax.block_ids(masked),
        tags=syntax.inline_tags(masked),
        fields=syntax.inline_fields(masked),
        links=tuple(syntax.body_links(masked, body_line)),
    )


@dataclass(frozen=True)
class Note:
    """One parsed note. The frontmatter is read at once; the rest on first use.

    Everything else (`links`, `tags`, `headings`, ...) is computed from `body` and
    `raw_frontmatter` once and cached, so loading a vault costs little more than its YAML.
    """

    path: str  # vault-relative, with "/"
    frontmatter: dict[str, Any] = field(default_factory=dict, hash=False)
    body: str = ""
    body_line: int = 1  # line of the file where the body starts
    raw_frontmatter: str | None = None  # the YAML text between the `---` lines
    error: str | None = None
    error_line: int | None = None
    lossy: bool = False  # read with replacement characters: rewriting it would lose bytes

    @property
    def name(self) -> str:
        """The file name without extension, which is what `[[links]]` use."""
        return splitext(basename(self.path))[0]

    @property
    def type(self) -> str | None:
        value = self.frontmatter.get("type")
        return value.strip().lower() if isinstance(value, str) else None

    @cached_property
    def syntax(self) -> BodySyntax:
        return read_body(self.body, self.body_line)

    @cached_property
    def property_lines(self) -> dict[str, int]:
        """The file line of each top-level frontmatter key."""
        return property_lines(self.raw_frontmatter) if self.frontmatter else {}

    @cached_property
    def frontmatter_links(self) -> tuple[Link, ...]:
        return tuple(frontmatter_links(self.frontmatter, self.raw_frontmatter))

    @cached_property
    def links(self) -> tuple[Link, ...]:
        """Links in the body, then wikilinks in frontmatter values."""
        return self.syntax.links + self.frontmatter_links

    @cached_property
    def tags(self) -> tuple[str, ...]:
        """Frontmatter tags, then inline tags, each once."""
        return tuple(dict.fromkeys(frontmatter_tags(self.frontmatter) + self.syntax.tags))

    @cached_property
    def aliases(self) -> tuple[str, ...]:
        return frontmatter_aliases(self.frontmatter)

    @property
    def headings(self) -> tuple[Heading, ...]:
        return self.syntax.headings

    @property
    def block_ids(self) -> tuple[str, ...]:
        return self.syntax.block_ids

    @property
    def fields(self) -> dict[str, tuple[str, ...]]:
        return self.syntax.fields


def decode_note(
    path: str, data: bytes, max_bytes: int = MAX_NOTE_BYTES, size: int | None = None
) -> Note:
    """Turn a file's bytes into a Note, refusing binary data and notes over `max_bytes`.

    `size` is the file's real size when `data` is only the start of the file: a note over
    the limit is read no further than its frontmatter, for its `type`. A note that is not
    UTF-8 is read with replacement characters, and says so in `error`.
    """
    size = len(data) if size is None else size
    if size > max_bytes:
        head = parse_note(path, data[:HEAD_BYTES].decode("utf-8", errors="replace"))
        error = f"note is {_human(size)}, over the {_human(max_bytes)} limit"
        return Note(path, frontmatter=_role_only(head.frontmatter), error=error, error_line=1)
    if data.find(b"\x00", 0, _BINARY_SNIFF) != -1:
        return Note(path, error="note holds binary data, not text")
    try:
        return parse_note(path, data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        note = parse_note(path, data.decode("utf-8", errors="replace"))
        error = (
            f"note is not UTF-8 text (byte 0x{data[exc.start]:02X} on line {line}); "
            "save it as UTF-8 so that vault-bmad can read and update it"
        )
        return replace(note, error=error, error_line=line, lossy=True)


def _role_only(frontmatter: dict[str, Any]) -> dict[str, Any]:
    """Of a note vault-bmad cannot use, only its `type`: enough to say what it was meant to be."""
    role = frontmatter.get("type")
    return {"type": role} if isinstance(role, str) else {}


def _human(size: int) -> str:
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def parse_note(path: str, text: str) -> Note:
    """Parse a note's text. Never raises, now or when its body syntax is first read."""
    text = text.removeprefix("\ufeff")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    raw_fm, body, body_line, error = split_frontmatter(text)
    frontmatter: dict[str, Any] = {}
    error_line = 1 if error else None
    if raw_fm is not None:
        frontmatter, error, error_line = load_frontmatter(raw_fm)
    return Note(
        path=path,
        frontmatter=frontmatter,
        body=body,
        body_line=body_line,
        raw_frontmatter=raw_fm,
        error=error,
        error_line=error_line,
    )


def split_frontmatter(text: str) -> tuple[str | None, str, int, str | None]:
    """Return (raw YAML or None, body, first body line, error).

    As in Obsidian, frontmatter exists only when the very first line is `---` and a
    later line closes it; otherwise the whole text is body.
    """
    if not text.startswith("---"):
        return None, text, 1, None
    first_break = text.find("\n")
    if first_break == -1 or text[3:first_break].strip(" \t"):
        return None, text, 1, None
    pos = first_break
    while (close := text.find("\n---", pos)) != -1:
        line_end = text.find("\n", close + 4)
        line_end = len(text) if line_end == -1 else line_end
        if not text[close + 4 : line_end].strip(" \t"):
            raw = text[first_break + 1 : close + 1]
            body_start = min(line_end + 1, len(text))
            return raw, text[body_start:], raw.count("\n") + 3, None
        pos = close + 1
    return None, text, 1, "frontmatter opened with --- on line 1 is never closed"


def load_frontmatter(raw: str) -> tuple[dict[str, Any], str | None, int | None]:
    """Load YAML frontmatter; return (mapping, error, file line of the error).

    Frontmatter that nests too deep or holds too many values is an error, with only its
    `type` kept, so that nothing walking it later can run out of stack or time.
    """
    try:
        loaded = yaml.load(raw, Loader=YamlLoader)  # a safe loader
    except yaml.YAMLError as exc:
        return {}, *_yaml_problem(exc, raw)
    except Exception as exc:  # any value YAML cannot build (a bad date...) must not stop the index
        return {}, f"broken YAML in frontmatter: {exc}", 1
    if loaded is None:
        return {}, None, None
    if not isinstance(loaded, dict):
        kind = type(loaded).__name__
        return {}, f"frontmatter must be a mapping of keys to values, not a {kind}", 2
    if "&" in raw or len(raw) > _WALK_ABOVE_CHARS or _nesting_bound(raw) > MAX_FRONTMATTER_DEPTH:
        problem = _shape_problem(loaded, aliases="&" in raw)
        if problem is not None:
            return _role_only(loaded), f"frontmatter {problem}", 1
    if not all(type(key) is str for key in loaded):
        loaded = {str(key): value for key, value in loaded.items()}  # `2024: x`, `null: y`
    return loaded, None, None


def _nesting_bound(raw: str) -> int:
    """At most how deep YAML text can nest: each level takes a line, `[`, `{`, `-` or `?`."""
    return sum(raw.count(mark) for mark in ("\n", "[", "{", "-", "?")) + 1


def _yaml_problem(exc: yaml.YAMLError, raw: str) -> tuple[str, int]:
    """The message and file line of a YAML error, naming where an open construct began."""
    last_line = raw.count("\n") + 1  # the parser may notice a problem past the end

    def file_line(mark: Any) -> int | None:
        return min(mark.line + 2, last_line) if mark is not None else None

    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    line = file_line(getattr(exc, "problem_mark", None))
    context = getattr(exc, "context", None)
    context_line = file_line(getattr(exc, "context_mark", None))
    message = f"broken YAML in frontmatter: {problem}"
    if context and context_line is not None and context_line != line:
        message += f" ({context} from line {context_line})"
    return message, line or context_line or 1


def _shape_problem(value: Any, *, aliases: bool) -> str | None:
    """Why `value` is unsafe to walk (too deep, too many values), or None when it is fine."""
    budget = MAX_FRONTMATTER_VALUES
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        budget -= 1
        if budget < 0:
            through = " through YAML aliases" if aliases else ""
            return f"expands to over {MAX_FRONTMATTER_VALUES} values{through}"
        if depth > MAX_FRONTMATTER_DEPTH:
            itself = " (or refers to itself)" if aliases else ""
            return f"nests deeper than {MAX_FRONTMATTER_DEPTH} levels{itself}"
        if isinstance(item, dict):
            stack += [(child, depth + 1) for child in item.values()]
        elif isinstance(item, list):
            stack += [(child, depth + 1) for child in item]
    return None


def property_lines(raw: str | None) -> dict[str, int]:
    """The file line of each top-level frontmatter key."""
    if not raw:
        return {}
    return {
        match.group(1).strip().strip("\"'"): raw.count("\n", 0, match.start()) + 2
        for match in _TOP_LEVEL_KEY.finditer(raw)
    }


def frontmatter_tags(frontmatter: dict[str, Any]) -> tuple[str, ...]:
    """Tags from the `tags` (or `tag`) property: a list, or a comma/space separated string."""
    value = frontmatter.get("tags", frontmatter.get("tag"))
    return tuple(t.lstrip("#") for t in _string_list(value, _TAG_SEPARATORS) if t.lstrip("#"))


def frontmatter_aliases(frontmatter: dict[str, Any]) -> tuple[str, ...]:
    """Other names of the note, from the `aliases` (or `alias`) property: a list, or a
    comma-separated string (`aliases: Doggo, Woofer`). Links do not resolve through them."""
    return _string_list(frontmatter.get("aliases", frontmatter.get("alias")), _ALIAS_SEPARATOR)


def _string_list(value: Any, separator: re.Pattern[str]) -> tuple[str, ...]:
    """A list property's items as text, each string split at `separator`, blanks dropped."""
    items: list[Any] = value if isinstance(value, list) else [value]
    return tuple(
        part.strip()
        for item in items
        if isinstance(item, str | int | float) and not isinstance(item, bool)
        for part in separator.split(str(item))
        if part.strip()
    )


def frontmatter_links(frontmatter: dict[str, Any], raw: str | None) -> list[Link]:
    """Wikilinks written in property values, as Obsidian indexes them."""
    if not raw or "[[" not in raw:
        return []
    links: list[Link] = []
    for value in _strings(frontmatter):
        start = value.find("[[")
        offset = raw.find(value[start : value.find("]]", start) + 2])
        line = raw.count("\n", 0, offset) + 2 if offset >= 0 else 1
        links += syntax.wikilinks_in(value, line, kind="frontmatter")
    return links


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if "[[" in value else []
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


def json_safe(value: Any) -> Any:
    """A frontmatter value as JSON can hold it: dates as ISO strings, keys as strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dt.date | dt.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((json_safe(item) for item in value), key=str)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")  # a YAML !!binary value
    return str(value)
