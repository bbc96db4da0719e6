"""Pure, byte-preserving edits of a note's YAML frontmatter.

The frontmatter is edited as text, never re-dumped: only the lines of the keys that
change are touched, so the user's comments, key order, quoting, indentation, CRLF line
endings, a byte-order mark and the body stay exactly as they were. PyYAML's composer
gives the position of every top-level value; frontmatter it cannot parse is edited
line by line instead, so even a broken note can be told why it is invalid.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from vault_bmad.vault.notes import SAFE_YAML_LOADER

try:  # libyaml's emitter, as for loading: several times faster than pure Python
    from yaml import CSafeDumper as YamlDumper
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeDumper as YamlDumper  # type: ignore[assignment]

_OPENING = re.compile(r"---[ \t]*(\r?\n)")
_CLOSING = re.compile(r"^---[ \t]*(?:\r?\n|\Z)", re.MULTILINE)
_STR_TAG = "tag:yaml.org,2002:str"
_TRAILING_SPACE = " \t\r\n"
_ONE_LINE = 2**31 - 1  # emitter width: never fold (libyaml takes a C int)
# A top-level key at the start of a line, for frontmatter PyYAML cannot parse.
_KEY_LINE = re.compile(
    r"""(?:"([^"\n]*)"|'([^'\n]*)'|([^\s#:"'-][^:\n]*?|-[^\s:][^:\n]*?))[ \t]*:(?=\s|$)"""
)
_LINE = re.compile(r"[^\n]*\n|[^\n]+")


@dataclass(frozen=True)
class NoteParts:
    """A note cut at its frontmatter: bom + opening + yaml + closing + body == text."""

    bom: str
    opening: str  # "---" and its line break
    yaml: str  # the lines between the delimiters, each with its line break
    closing: str  # "---" and its line break, if any
    body: str
    newline: str  # the line break the frontmatter uses


@dataclass(frozen=True)
class _KeySpan:
    """Where one top-level key sits in the frontmatter text (offsets into it)."""

    line_start: int  # start of the key's first line
    value_start: int  # where a replacement value goes
    value_end: int  # end of the old value (a trailing comment after it stays)
    line_end: int  # just past the line break of the value's last line
    prefix: str  # written before the new value
    suffix: str  # written after it


def split_note(text: str) -> NoteParts | None:
    """Cut `text` at its frontmatter, or return None if it has none (Obsidian's rules)."""
    bom = "\ufeff" if text.startswith("\ufeff") else ""
    opening = _OPENING.match(text, len(bom))
    if opening is None:
        return None
    closing = _CLOSING.search(text, opening.end())
    if closing is None:
        return None
    return NoteParts(
        bom=bom,
        opening=opening.group(0),
        yaml=text[opening.end() : closing.start()],
        closing=closing.group(0),
        body=text[closing.end() :],
        newline=opening.group(1),
    )


def yaml_value(value: object) -> str:
    """Render `value` as one line of YAML that loads back to an equal value."""
    if value is None or isinstance(value, str | int | float):
        return _scalar_value(value)  # keys and statuses repeat on every write
    return _render_value(value)


@functools.lru_cache(maxsize=1024, typed=True)  # typed: True and 1 render differently
def _scalar_value(value: str | float | None) -> str:
    return _render_value(value)


def _render_value(value: object) -> str:
    flow = isinstance(value, list | tuple | dict)
    rendered = _dump_value(value, flow=flow, quoted=False)
    if "\n" in rendered or rendered.startswith("'"):
        rendered = _dump_value(value, flow=flow, quoted=True)
    return rendered


def raw_values(source: str) -> dict[str, str]:
    """Each top-level key's value as written, found line by line (for YAML that won't load)."""
    return {
        key: "\n".join(source[span.value_start : span.value_end].strip() for span in spans)
        for key, spans in _spans_from_lines(source).items()
    }


def set_frontmatter_keys(text: str, changes: Mapping[str, object | None]) -> str:
    """Return `text` with top-level frontmatter keys set; a None value removes the key.

    Only the lines of keys whose value changes are rewritten; new keys go at the end
    of the frontmatter. A note without frontmatter gets one. Everything else is kept
    byte for byte.
    """
    parts = split_note(text)
    if parts is None:
        additions = {key: value for key, value in changes.items() if value is not None}
        if not additions:
            return text
        bom = "\ufeff" if text.startswith("\ufeff") else ""
        newline = "\r\n" if "\r\n" in text else "\n"
        lines = "".join(_key_line(key, value, newline) for key, value in additions.items())
        return f"{bom}---{newline}{lines}---{newline}{text[len(bom) :]}"
    edited = _edit_yaml(parts.yaml, changes, parts.newline)
    return parts.bom + parts.opening + edited + parts.closing + parts.body


def _edit_yaml(source: str, changes: Mapping[str, object | None], newline: str) -> str:
    try:
        root = yaml.compose(source, Loader=SAFE_YAML_LOADER)
        current: object = yaml.load(source, Loader=SAFE_YAML_LOADER)  # a safe loader
    except yaml.YAMLError:
        current = None
        spans = _spans_from_lines(source)
    else:
        if isinstance(root, MappingNode) and root.flow_style:
            return _rewrite_flow_mapping(source, changes, newline)
        found = _spans_from_nodes(source, root)
        spans = found if found is not None else _spans_from_lines(source)
    if isinstance(current, dict):
        changes = {k: v for k, v in changes.items() if not _holds(current, k, v)}
    edits: list[tuple[int, int, str]] = []
    appended: list[str] = []
    for key, value in changes.items():
        for span in spans.get(key, ()):
            if value is None:
                edits.append((span.line_start, span.line_end, ""))
            else:
                new = span.prefix + yaml_value(value) + span.suffix
                edits.append((span.value_start, span.value_end, new))
        if key not in spans and value is not None:
            appended.append(_key_line(key, value, newline))
    for start, end, new in sorted(edits, reverse=True):
        source = source[:start] + new + source[end:]
    return source + "".join(appended)


def _spans_from_nodes(source: str, root: Node | None) -> dict[str, list[_KeySpan]] | None:
    """Locate each top-level key from PyYAML's node marks; None if the marks don't fit."""
    spans: dict[str, list[_KeySpan]] = {}
    if root is None:
        return spans
    if not isinstance(root, MappingNode):
        return None
    pairs: list[tuple[Node, Node]] = root.value
    for number, (key, value) in enumerate(pairs):
        if not (isinstance(key, ScalarNode) and key.tag == _STR_TAG):
            continue
        limit = pairs[number + 1][0].start_mark.index if number + 1 < len(pairs) else len(source)
        colon = source.find(":", key.end_mark.index, limit)
        start, end = value.start_mark.index, _node_end(value)
        if colon < 0 or not colon < start <= end <= limit:
            return None  # an alias, or marks that don't fit: edit line by line instead
        while end > start and source[end - 1] in _TRAILING_SPACE:
            end -= 1
        key_line_end = _line_end(source, colon)
        prefix, suffix = "", ""
        if start >= key_line_end or start == end:
            # The old value is empty or starts on a later line: put the new one after
            # the colon, keeping a comment that follows the colon on the key's line.
            rest = source[colon + 1 : key_line_end].rstrip(_TRAILING_SPACE)
            prefix, suffix = " ", (" " + rest.strip() if rest.strip() else "")
            start, end = colon + 1, max(end, colon + 1 + len(rest))
        spans.setdefault(str(key.value), []).append(
            _KeySpan(
                line_start=source.rfind("\n", 0, key.start_mark.index) + 1,
                value_start=start,
                value_end=end,
                line_end=_line_end(source, end),
                prefix=prefix,
                suffix=suffix,
            )
        )
    return spans


def _node_end(node: Node) -> int:
    """End of a value's last character: block collections end at their last leaf."""
    if isinstance(node, MappingNode | SequenceNode) and not node.flow_style and node.value:
        last = node.value[-1]
        return _node_end(last[1] if isinstance(node, MappingNode) else last)
    return int(node.end_mark.index)


def _spans_from_lines(source: str) -> dict[str, list[_KeySpan]]:
    """Locate top-level keys by their lines: for frontmatter that isn't valid YAML."""
    lines = _LINE.findall(source)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))
    spans: dict[str, list[_KeySpan]] = {}
    for number, line in enumerate(lines):
        match = _KEY_LINE.match(line)
        if match is None:
            continue
        after = number + 1
        while after < len(lines) and _continues_value(lines[after]):
            after += 1
        while after > number + 1 and not lines[after - 1].strip():
            after -= 1
        last_line = lines[after - 1]
        value_end = offsets[after] - (len(last_line) - len(last_line.rstrip("\r\n")))
        key = next(group for group in match.groups() if group is not None)
        spans.setdefault(key, []).append(
            _KeySpan(
                line_start=offsets[number],
                value_start=offsets[number] + match.end(),
                value_end=value_end,
                line_end=offsets[after],
                prefix=" ",
                suffix="",
            )
        )
    return spans


def _continues_value(line: str) -> bool:
    """Indented, blank, or a "- item" of a block list: still the previous key's value."""
    bare = line.rstrip("\r\n")
    return bare[:1] in (" ", "\t") or not bare.strip() or bare == "-" or bare.startswith("- ")


def _holds(current: dict[object, object], key: str, value: object) -> bool:
    """Whether the frontmatter already says `key: value` (or lacks a key to remove)."""
    if value is None:
        return key not in current
    return key in current and type(current[key]) is type(value) and current[key] == value


def _rewrite_flow_mapping(source: str, changes: Mapping[str, object | None], newline: str) -> str:
    """A `{...}` frontmatter has no lines to edit: load it, apply, and write it as a block.

    Comment lines before and after the mapping stay; comments inside it are lost.
    """
    data = dict(yaml.load(source, Loader=SAFE_YAML_LOADER) or {})  # a safe loader
    if all(_holds(data, key, value) for key, value in changes.items()):
        return source
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    lines = _LINE.findall(source)
    content = [number for number, line in enumerate(lines) if _is_content(line)]
    before, after = "".join(lines[: content[0]]), "".join(lines[content[-1] + 1 :])
    return before + "".join(_key_line(key, value, newline) for key, value in data.items()) + after


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _key_line(key: object, value: object, newline: str) -> str:
    return f"{yaml_value(key)}: {yaml_value(value)}{newline}"


def _line_end(source: str, position: int) -> int:
    """Offset just past the line break of the line holding `position`."""
    found = source.find("\n", position)
    return len(source) if found < 0 else found + 1


def _dump_value(value: object, *, flow: bool, quoted: bool) -> str:
    """Dump a one-key mapping and cut the value out of it, so PyYAML picks the style."""
    dumped = yaml.dump(
        {"k": list(value) if isinstance(value, tuple) else value},
        Dumper=YamlDumper,
        default_flow_style=flow,
        default_style='"' if quoted else None,
        allow_unicode=True,
        sort_keys=False,
        width=_ONE_LINE,
    ).rstrip("\n")
    if flow:
        dumped = dumped[1:-1]  # the braces of the one-key mapping
    return dumped.split(": ", 1)[1]
