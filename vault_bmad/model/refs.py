"""Read references written in frontmatter: `"[[Note]]"`, `Note`, `Folder/Note.md`, or lists."""

from __future__ import annotations

import re
from typing import Any

from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.syntax import split_subpath

_WIKILINK = re.compile(r"^!?\[\[([^\[\]]+)\]\]$")


def as_list(value: Any) -> list[Any]:
    """A property that may hold one value or a list of them; missing is empty."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def link_path(value: str) -> str:
    """The link path inside a reference: `[[Note#H|alias]]` and `Note` both give `Note`."""
    text = value.strip()
    match = _WIKILINK.match(text)
    if match:
        text = match.group(1).replace("\\|", "|").partition("|")[0]
    return split_subpath(text)[0].strip()


def resolve_ref(index: VaultIndex, value: object, source: str) -> str | None:
    """The vault path a reference points to, or None when it resolves to nothing."""
    if not isinstance(value, str) or not value.strip():
        return None
    return index.resolve(link_path(value), source)


def template_ref(index: VaultIndex, value: object, source: str) -> tuple[str | None, str]:
    """The template note a `template:` reference names, or None and why not: it resolves to
    no note, or to one that is not `type: template` (a link to `[[Bad]]` resolves to the
    task note beside it before a `Templates/Bad.md`, as in Obsidian)."""
    path = resolve_ref(index, value, source)
    if path is None:
        return None, f"template {describe(value)} is not a note in the vault"
    note = index.get(path)
    role = note.type if note is not None else None
    if role == "template":
        return path, ""
    what = (
        f"{'an' if role[:1] in tuple('aeiou') else 'a'} {role} note"
        if role
        else "a note with no type"
    )
    return (
        None,
        f"template {describe(value)} is {path}, {what}, not a template note (type: template)",
    )


def describe(value: object) -> str:
    """How to quote a reference back to the user."""
    return value.strip() if isinstance(value, str) else repr(value)


def slug(text: str) -> str:
    """A lowercase id from a name: `Write the PRD` gives `write-the-prd`."""
    return re.sub(r"[^\w/]+", "-", text.strip().lower()).strip("-") or "note"
