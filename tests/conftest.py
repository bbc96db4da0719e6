"""Shared fixtures: real temporary vaults written note by note, and the CLI's JSON answers."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from vault_bmad.cli import main

SAMPLE_VAULT = Path(__file__).resolve().parent.parent / "sample_vault"

WriteNote = Callable[[str, str], Path]


def run_json(vault: Path) -> tuple[int, dict[str, Any]]:
    """`vault-bmad run VAULT --format json`, in this process: its exit code and answer."""
    result = CliRunner().invoke(main, ["run", str(vault), "--format", "json"])
    return result.exit_code, json.loads(result.stdout)


def check_json(vault: Path) -> tuple[int, list[dict[str, Any]]]:
    """`vault-bmad check VAULT --format json`: its exit code and the problems it found."""
    result = CliRunner().invoke(main, ["check", str(vault), "--format", "json"])
    return result.exit_code, json.loads(result.stdout)["problems"]


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    root = tmp_path / "vault"
    root.mkdir()
    return root


@pytest.fixture
def write(vault: Path) -> WriteNote:
    """Write a file into the vault from an indented literal; returns its path."""

    def write_note(rel_path: str, text: str) -> Path:
        path = vault / rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write_note


@pytest.fixture
def sample_vault(tmp_path: Path) -> Path:
    """A private copy of sample_vault/, safe to run and write into."""
    copy = tmp_path / "sample_vault"
    shutil.copytree(SAMPLE_VAULT, copy, ignore=shutil.ignore_patterns(".vault-bmad"))
    return copy


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's own config file or VAULT_BMAD_* variables."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    for name in [n for n in os.environ if n.startswith("VAULT_BMAD_")]:
        monkeypatch.delenv(name)
