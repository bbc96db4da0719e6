"""Vault-relative paths: normalized with "/" and never allowed to leave the vault."""

from __future__ import annotations

import re
from pathlib import Path

from vault_bmad.errors import VaultPathError

_DRIVE = re.compile(r"^[A-Za-z]:")


def normalize_vault_path(rel: str) -> str:
    """Return `rel` as a clean vault-relative path ("a/b.md"), or raise VaultPathError.

    Pure: backslashes become "/", "." parts and repeated slashes go, ".." folds into its
    parent. Absolute paths, drive letters, NUL bytes, empty paths and ".." that would
    climb above the vault root are refused.
    """
    if "\x00" in rel:
        raise VaultPathError(f"path {rel!r} contains a NUL byte")
    slashed = rel.replace("\\", "/")
    if slashed.startswith("/") or _DRIVE.match(slashed):
        raise VaultPathError(f"path {rel!r} is absolute; give a path inside the vault")
    parts: list[str] = []
    for part in slashed.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise VaultPathError(f"path {rel!r} leaves the vault")
            parts.pop()
        else:
            parts.append(part)
    if not parts:
        raise VaultPathError(f"path {rel!r} does not name a file in the vault")
    return "/".join(parts)


def resolve_in_vault(root: Path, rel: str) -> Path:
    """Return the real location of `rel` under `root`, following symlinks.

    Raises VaultPathError when the path is malformed or its real location, after every
    symlink on the way, is outside the vault. The file itself need not exist yet.
    """
    real_root = root.resolve()
    target = (real_root / normalize_vault_path(rel)).resolve()
    if not target.is_relative_to(real_root) or target == real_root:
        raise VaultPathError(f"path {rel!r} resolves outside the vault, to {target}")
    return target
