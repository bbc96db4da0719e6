"""The write-back's temporary files: how they are named, and clearing those a kill left.

A note is written to `.<name>.<12 hex digits>.tmp` beside it, then renamed onto it. A
process killed in between (kill -9, power loss) leaves that file. Since vault-bmad holds
the vault's lock while it writes, at start any file so named is such a leftover; a file
named otherwise is never touched.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from pathlib import Path

__all__ = ["is_leftover", "remove_leftovers", "temporary_path"]

_logger = logging.getLogger(__name__)
_LEFTOVER = re.compile(r"\.(?P<note>.+\.md)\.[0-9a-f]{12}\.tmp")


def temporary_path(path: Path) -> Path:
    """A fresh temporary file name beside the note at `path`."""
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def is_leftover(name: str) -> bool:
    """Whether a file name is one `temporary_path` gives."""
    return _LEFTOVER.fullmatch(name) is not None


def remove_leftovers(root: Path) -> list[str]:
    """Delete the temporary files an interrupted write-back left in the vault at `root`
    (hidden folders are not entered: vault-bmad never writes there); returns their
    vault-relative paths. Call only while holding the vault's lock."""
    removed = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in names:
            if not is_leftover(name):
                continue
            path = Path(folder) / name
            try:
                if path.is_file() and not path.is_symlink():
                    path.unlink()
                    removed.append(path.relative_to(root).as_posix())
            except OSError as error:
                _logger.warning("could not remove the leftover %s: %s", path, error)
    if removed:
        _logger.warning(
            "removed %d temporary file(s) an interrupted write left: %s",
            len(removed),
            ", ".join(removed[:10]) + (" ..." if len(removed) > 10 else ""),
        )
    return removed
