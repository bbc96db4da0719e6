"""Vault paths: normalized, and confined to the vault even through symlinks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vault_bmad.errors import VaultPathError
from vault_bmad.vault.paths import normalize_vault_path, resolve_in_vault


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("Docs/PRD.md", "Docs/PRD.md"),
        ("./Docs/PRD.md", "Docs/PRD.md"),
        ("Docs\\Sub\\PRD.md", "Docs/Sub/PRD.md"),
        ("Docs//./PRD.md", "Docs/PRD.md"),
        ("Docs/old/../PRD.md", "Docs/PRD.md"),
        ("Docs/PRD.md/", "Docs/PRD.md"),
        ("Notes with spaces/Ünïcode: no.md", "Notes with spaces/Ünïcode: no.md"),
    ],
)
def test_normalize_cleans_paths(given: str, expected: str) -> None:
    assert normalize_vault_path(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "../outside.md",
        "Docs/../../outside.md",
        "..\\outside.md",
        "/etc/passwd",
        "\\\\server\\share\\x.md",
        "C:\\Users\\x.md",
        "c:relative.md",
        "Docs/a\x00b.md",
        "",
        "./.",
        "Docs/..",
    ],
)
def test_normalize_refuses_escapes_and_names_the_path(given: str) -> None:
    with pytest.raises(VaultPathError) as raised:
        normalize_vault_path(given)
    assert repr(given) in str(raised.value)


def test_resolve_gives_the_real_path_inside_the_vault(vault: Path) -> None:
    resolved = resolve_in_vault(vault, "Docs\\New/Note.md")
    assert resolved == vault.resolve() / "Docs" / "New" / "Note.md"
    assert not resolved.parent.exists()  # resolving creates nothing


def test_resolve_refuses_a_symlinked_file_that_points_outside(vault: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.md"
    secret.write_text("outside", encoding="utf-8")
    (vault / "Tasks").mkdir()
    os.symlink(secret, vault / "Tasks" / "evil.md")
    with pytest.raises(VaultPathError, match=r"evil\.md"):
        resolve_in_vault(vault, "Tasks/evil.md")


def test_resolve_refuses_a_symlinked_folder_that_points_outside(
    vault: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    os.symlink(outside, vault / "Linked")
    with pytest.raises(VaultPathError, match="Linked"):
        resolve_in_vault(vault, "Linked/new.md")


def test_resolve_follows_a_symlink_that_stays_inside(vault: Path) -> None:
    (vault / "Real").mkdir()
    os.symlink(vault / "Real", vault / "Alias")
    assert resolve_in_vault(vault, "Alias/note.md") == vault.resolve() / "Real" / "note.md"
