"""Content-addressed cache keys: a key changes whenever anything the result depends on changes."""

from __future__ import annotations

import base64
import dataclasses
import enum
import hashlib
import json
from collections.abc import Mapping
from pathlib import PurePath

_KEY_VERSION = "vault-bmad/cache-key/1"  # bump to invalidate every key at once


def content_key(parts: Mapping[str, object]) -> str:
    """A stable sha256 hex digest over a canonical JSON form of `parts`.

    A runtime passes everything its result depends on: runtime name, model and its
    parameters, persona, task body, and the text of every context note and dependency
    output it read. Editing any of them yields a new key, so no one ever has to
    invalidate anything. Mapping keys must be strings; sets are sorted, tuples become
    lists, bytes are base64, paths are POSIX strings, dataclasses and pydantic models
    become their fields. Anything else raises TypeError rather than hash an unstable repr.
    """
    document = json.dumps(
        {"version": _KEY_VERSION, "parts": parts},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
        default=_canonical,
    )
    return hashlib.sha256(document.encode("utf-8")).hexdigest()


def _canonical(value: object) -> object:
    """Turn a value json cannot encode into one it can, the same way every time."""
    if isinstance(value, set | frozenset):
        return sorted(value, key=lambda item: json.dumps(item, sort_keys=True, default=_canonical))
    if isinstance(value, bytes | bytearray):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, PurePath):
        return value.as_posix()
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return model_dump(mode="json")
    raise TypeError(f"cannot make a cache key from a {type(value).__name__}")
