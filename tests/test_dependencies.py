"""Dependencies are what the package imports: every runtime dependency in pyproject.toml is
imported by vault_bmad/ outside bench/ (benchmark code, whose peers are the bench extra),
and that code imports nothing undeclared."""

from __future__ import annotations

import ast
import sys
import tomllib
from collections.abc import Iterable
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "vault_bmad"
BENCH = PACKAGE / "bench"


def runtime_files() -> list[Path]:
    return [path for path in PACKAGE.rglob("*.py") if BENCH not in path.parents]


def runtime_dependencies() -> list[str]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        return list(tomllib.load(file)["project"]["dependencies"])


def imported_modules(files: Iterable[Path]) -> set[str]:
    """The top-level name of every absolute import in `files`, late imports included."""
    found: set[str] = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def import_names() -> dict[str, set[str]]:
    """The modules each installed distribution provides, by its canonical name."""
    provided: dict[str, set[str]] = {}
    for module, distributions in packages_distributions().items():
        for distribution in distributions:
            provided.setdefault(canonicalize_name(distribution), set()).add(module)
    return provided


def modules_of(requirement: str, provided: dict[str, set[str]]) -> set[str]:
    return provided.get(canonicalize_name(Requirement(requirement).name), set())


def unimported(requirements: Iterable[str], imported: set[str]) -> list[str]:
    """The requirements none of whose modules is in `imported`, by distribution name."""
    provided = import_names()
    return [
        canonicalize_name(Requirement(text).name)
        for text in requirements
        if not modules_of(text, provided) & imported
    ]


def third_party(modules: set[str]) -> set[str]:
    return {m for m in modules if m not in sys.stdlib_module_names and m != "vault_bmad"}


def test_every_runtime_dependency_is_imported_by_the_package() -> None:
    imported = imported_modules(runtime_files())
    assert unimported(runtime_dependencies(), imported) == []


def test_the_runtime_imports_only_declared_dependencies() -> None:
    provided = import_names()
    declared = set().union(*(modules_of(text, provided) for text in runtime_dependencies()))
    assert third_party(imported_modules(runtime_files())) - declared == set()


def test_the_check_names_a_dependency_that_nothing_imports() -> None:
    imported = {"yaml", "flask"}  # PyYAML and Flask are imported under other names
    assert unimported(["PyYAML>=6.0", "Flask", "pytest>=8", "theine"], imported) == [
        "pytest",
        "theine",
    ]
    assert unimported(["no-such-distribution"], imported) == ["no-such-distribution"]
