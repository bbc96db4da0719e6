"""Commands import only what they use: each runs in a fresh interpreter, which reports the
modules it loaded, and none of what only `serve` or Dask needs may be among them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vault_bmad.runner import EXIT_NEEDS_INPUT

# Imported by `serve` (the dashboard, its charts, Prometheus, the watcher) or Dask only.
SERVE_AND_DASK = (
    "flask",
    "werkzeug",
    "plotly",
    "prometheus_client",
    "watchdog",
    "distributed",
    "dask",
    "sqlite_utils",
    "vault_bmad.web",
    "vault_bmad.service",
)
# Reading and validating a vault needs neither the engine, the store (`check` reads the
# invalid marks with one read-only query, `metrics.marks`) nor a runtime's library.
RUN_ONLY = (
    "vault_bmad.engine",
    "vault_bmad.metrics.store",
    "vault_bmad.runtimes.command",  # `check` applies its rule, `runtimes.command_rules`
    "jinja2",
    "httpx",
)
# Reading the store's invalid marks: a vault without a store needs neither.
STORE_READ = ("sqlite3", "vault_bmad.metrics.records")
# Validating notes: pydantic's models and the loaders that build them, and the note writer.
# A vault with no notes to read needs none of them.
NOTE_MODELS = ("pydantic.main", "vault_bmad.model.definitions", "vault_bmad.vault.writer")

# Runs the CLI as its entry point does, then writes sys.modules to the file named first.
PROBE = """
import json, sys
out = sys.argv.pop(1)
try:
    from vault_bmad.cli import main
    main(sys.argv[1:], prog_name="vault-bmad")
finally:
    with open(out, "w") as file:
        json.dump(sorted(sys.modules), file)
"""


def imported_by(args: list[str], tmp_path: Path) -> set[str]:
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out), *args], capture_output=True, text=True
    )
    assert done.returncode in (0, 1, EXIT_NEEDS_INPUT), done.stderr  # the sample asks
    return set(json.loads(out.read_text()))


def loaded(modules: set[str], packages: tuple[str, ...]) -> list[str]:
    """The `packages` of which `modules` holds the package or any of its submodules."""
    return [p for p in packages if any(m == p or m.startswith(p + ".") for m in modules)]


@pytest.mark.parametrize("command", ["check", "index"])
def test_reading_a_vault_imports_neither_serve_nor_the_engine(
    command: str, sample_vault: Path, tmp_path: Path
) -> None:
    modules = imported_by([command, str(sample_vault)], tmp_path)
    assert "vault_bmad.vault.index" in modules  # the probe saw the command's own imports
    assert loaded(modules, SERVE_AND_DASK + RUN_ONLY) == []


def test_checking_a_vault_without_notes_builds_no_models(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    modules = imported_by(["check", str(vault)], tmp_path)
    assert "vault_bmad.model.validate" in modules
    assert loaded(modules, NOTE_MODELS + STORE_READ + SERVE_AND_DASK + RUN_ONLY) == []


def test_checking_a_vault_with_notes_validates_them(sample_vault: Path, tmp_path: Path) -> None:
    assert set(NOTE_MODELS) <= imported_by(["check", str(sample_vault)], tmp_path)


def test_run_on_threads_imports_nothing_of_serve_or_dask(
    sample_vault: Path, tmp_path: Path
) -> None:
    modules = imported_by(["run", str(sample_vault), "--executor", "thread"], tmp_path)
    assert {"vault_bmad.engine.orchestrator", "vault_bmad.metrics.store", "jinja2"} <= modules
    assert loaded(modules, SERVE_AND_DASK) == []
