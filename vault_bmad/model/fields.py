"""Build a definition from frontmatter values and turn pydantic's complaints into Problems."""

from __future__ import annotations

from datetime import date
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from vault_bmad.errors import Problem
from vault_bmad.vault.notes import Note

ModelT = TypeVar("ModelT", bound=BaseModel)


def build(
    model: type[ModelT], values: dict[str, Any], note: Note, problems: list[Problem]
) -> ModelT | None:
    """`model(**values)`, or None with one Problem per bad field, each at its line."""
    try:
        return model(**values)
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            problems.append(
                Problem(note.path, note.property_lines.get(field), f"{field}: {message}")
            )
        return None


def text_list(value: Any) -> tuple[str, ...]:
    """A list of words or phrases, written as a YAML list or a comma-separated string."""
    items = value if isinstance(value, list | tuple) else str(value or "").split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())


def listed_texts(value: Any) -> tuple[str, ...]:
    """A list property item by item, as text ("" for an item that is not text): a note's
    `answers:`, one per question, in order.

    A single value is a list of one; `yes`/`no` (YAML booleans) stay words, and an item
    that is a list or a mapping is not text, so it counts as missing."""
    items = value if isinstance(value, list) else [] if value is None else [value]
    return tuple(_item_text(item) for item in items)


def _item_text(item: Any) -> str:
    if isinstance(item, bool):
        return "yes" if item else "no"
    if item is None or isinstance(item, dict | list):
        return ""
    text = item.isoformat() if isinstance(item, date) else str(item)
    return text.strip()


def known(frontmatter: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The subset of frontmatter a definition reads; other properties are the user's own."""
    return {key: frontmatter[key] for key in keys if key in frontmatter}
