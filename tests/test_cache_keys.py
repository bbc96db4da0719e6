"""Content-addressed keys and the named domain caches keyed by file identity."""

from __future__ import annotations

import enum
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest
from pydantic import BaseModel

from vault_bmad.cache.domain import file_key, named_cache
from vault_bmad.cache.keys import content_key

PARTS: dict[str, object] = {
    "runtime": "llm",
    "model": "llama3.1",
    "params": {"temperature": 0.2, "max_tokens": 800},
    "persona": "You are Winston, the architect.",
    "body": "Design the architecture.",
    "context": {"Docs/Project Brief.md": "# Brief\nBuild a todo app.\n"},
    "dependencies": {"prd": "# PRD\n..."},
}


def test_a_key_is_a_sha256_hex_digest_and_stable() -> None:
    key = content_key(PARTS)
    assert len(key) == 64
    assert int(key, 16) >= 0
    assert content_key(dict(PARTS)) == key


def test_the_order_of_mapping_keys_does_not_matter() -> None:
    reordered = dict(reversed(list(PARTS.items())))
    assert content_key(reordered) == content_key(PARTS)


@pytest.mark.parametrize(
    ("part", "changed"),
    [
        ("runtime", "template"),
        ("model", "llama3.2"),
        ("params", {"temperature": 0.3, "max_tokens": 800}),
        ("persona", "You are Winston."),
        ("body", "Design the architecture!"),
        ("context", {"Docs/Project Brief.md": "# Brief\nBuild a todo app with sync.\n"}),
        ("dependencies", {"prd": "# PRD\nrevised"}),
    ],
)
def test_changing_any_part_changes_the_key(part: str, changed: object) -> None:
    assert content_key({**PARTS, part: changed}) != content_key(PARTS)


def test_the_key_does_not_depend_on_the_process_hash_seed() -> None:
    script = (
        "from vault_bmad.cache.keys import content_key;"
        "print(content_key({'a': {'x', 'y', 'z'}, 'b': b'raw', 'c': (1, 2)}))"
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert len(keys) == 1
    assert keys == {content_key({"a": {"z", "y", "x"}, "b": b"raw", "c": [1, 2]})}


class Colour(enum.Enum):
    RED = "red"


@dataclass(frozen=True)
class Point:
    x: int
    y: int


class Model(BaseModel):
    name: str


def test_common_value_types_have_a_canonical_form() -> None:
    assert content_key({"path": PurePosixPath("Docs/a.md")}) == content_key({"path": "Docs/a.md"})
    assert content_key({"colour": Colour.RED}) == content_key({"colour": "red"})
    assert content_key({"point": Point(1, 2)}) == content_key({"point": {"x": 1, "y": 2}})
    assert content_key({"model": Model(name="a")}) == content_key({"model": {"name": "a"}})
    assert content_key({"data": b"\x00\x01"}) != content_key({"data": b"\x00\x02"})


def test_a_value_without_a_stable_form_is_refused() -> None:
    with pytest.raises(TypeError, match="object"):
        content_key({"thing": object()})


def test_a_parsed_note_misses_after_the_note_is_edited(tmp_path: Path) -> None:
    note = tmp_path / "Tasks" / "Design.md"
    note.parent.mkdir()
    note.write_text("---\ntype: task\n---\nDesign it.\n", encoding="utf-8")
    os.utime(note, ns=(1_000_000_000, 1_000_000_000))
    parsed = named_cache("parsed-notes", capacity=10)
    parsed.set(file_key(note), {"type": "task"})
    assert parsed.get(file_key(note)) == {"type": "task"}
    note.write_text("---\ntype: task\nstatus: todo\n---\nDesign it.\n", encoding="utf-8")
    os.utime(note, ns=(2_000_000_000, 2_000_000_000))
    assert file_key(note) == (str(note), 2_000_000_000, note.stat().st_size)
    assert parsed.get(file_key(note)) is None
    stats = parsed.stats()
    assert (stats.name, stats.hits, stats.misses) == ("parsed-notes", 1, 1)
