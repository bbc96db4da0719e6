"""The packages are layers: no import in vault_bmad/ goes up the table in docs/design.md.

The table is read from the design document itself, so the docs and this test cannot
disagree. Every import counts: at the top of a file, inside a function, relative or not.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DESIGN = REPO / "docs" / "design.md"
ROOT_MODULE = "__init__"  # how the table names the package's own __init__.py
_SECTION = "\n## Layers\n"


def layer_table(markdown: str) -> dict[str, int]:
    """Module -> layer, from the table under `## Layers`: a `layer` column of numbers (1 at
    the bottom), then a `modules` column naming each top-level module or package in code."""
    section = markdown.partition(_SECTION)[2].split("\n## ")[0]
    rows = [line.strip().strip("|").split("|") for line in section.splitlines() if "|" in line]
    if len(rows) < 3 or [cell.strip() for cell in rows[0][:2]] != ["layer", "modules"]:
        raise ValueError("no table with columns `layer | modules` under `## Layers`")
    layers: dict[str, int] = {}
    for cells in rows[2:]:
        layer = int(cells[0])
        for name in re.findall(r"`([^`]+)`", cells[1]):
            if name in layers:
                raise ValueError(f"`{name}` is in layers {layers[name]} and {layer}")
            layers[name] = layer
    return layers


@dataclass(frozen=True)
class Import:
    path: str  # the importing file, relative to the package's parent folder
    line: int
    source: str  # the importing module's top-level name: `engine`, `config`, `__init__`
    target: str  # the module imported, absolute: `vault_bmad.engine.balancer`


def top_level(module: str) -> str:
    """`vault_bmad.engine.balancer` -> `engine`; `vault_bmad` itself -> `__init__`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] != "__init__" else ROOT_MODULE


def package_modules(package: Path) -> set[str]:
    """The top-level names under `package`: its modules and subpackages."""
    return {
        top_level(".".join(path.relative_to(package.parent).with_suffix("").parts))
        for path in package.rglob("*.py")
    }


def imports_in(file: Path, package: Path, modules: set[str]) -> list[Import]:
    """Every import of `package`'s own `modules` in `file`, wherever it sits in the file."""
    rel = file.relative_to(package.parent)
    module = ".".join(rel.with_suffix("").parts)
    folder = module.split(".")[:-1]  # the package `from .` means, for __init__.py too
    found: list[Import] = []
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"), str(file))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = folder[: len(folder) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # `from vault_bmad import engine` imports a module, `... import __version__` the root
            targets = [
                f"{base}.{alias.name}" if base == package.name and alias.name in modules else base
                for alias in node.names
            ]
        else:
            continue
        found += [
            Import(rel.as_posix(), node.lineno, top_level(module), target)
            for target in dict.fromkeys(targets)  # `from m import a, b` imports m once
            if target == package.name or target.startswith(package.name + ".")
        ]
    return found


def layer_problems(package: Path, layers: dict[str, int]) -> list[str]:
    """Each module the table does not place, each name it places that does not exist, and
    each import that goes up, with its file, line and both layers."""
    modules = package_modules(package)
    problems = [
        f"{package.name}/{name}: not in the layer table" for name in modules - layers.keys()
    ]
    problems += [
        f"`{name}`: in the layer table, not in {package.name}/" for name in layers.keys() - modules
    ]
    for file in sorted(package.rglob("*.py")):
        for found in imports_in(file, package, modules):
            source, target = layers.get(found.source), layers.get(top_level(found.target))
            if source is not None and target is not None and target > source:
                problems.append(
                    f"{found.path}:{found.line}: {found.source} (layer {source}) imports "
                    f"{found.target} ({top_level(found.target)}, layer {target}), a layer above"
                )
    return sorted(problems)


def test_no_import_in_vault_bmad_goes_up_the_design_table() -> None:
    assert layer_problems(REPO / "vault_bmad", layer_table(DESIGN.read_text())) == []


def test_the_table_reads_as_the_design_shows_it() -> None:
    layers = layer_table(DESIGN.read_text())
    assert layers["errors"] == layers["config"] == 1
    assert layers["config"] < layers["engine"] < layers["web"] == layers["cli"]


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_names_each_upward_import_and_each_unplaced_module(tmp_path: Path) -> None:
    _write(
        tmp_path / "vault_bmad",
        {
            "__init__.py": '__version__ = "0"\n',
            "errors.py": "",
            "config.py": (
                "import os\n"
                "from vault_bmad.errors import Problem\n"  # sideways
                "\n"
                "def strategy():\n"
                "    from vault_bmad.engine.balancer import Strategy\n"  # late, and up
                "    return Strategy\n"
            ),
            "engine/__init__.py": "from . import balancer\n",
            "engine/balancer.py": (
                "from ..config import ENV\n"  # relative, down
                "from .. import web\n"  # relative, up
                "import vault_bmad.web.app\n"  # absolute, up
                "from vault_bmad import __version__\n"  # the root, down
            ),
            "web/__init__.py": "",
            "web/app.py": "from vault_bmad.engine import balancer\nimport json\n",
            "stray.py": "",
        },
    )
    layers = {"__init__": 1, "errors": 1, "config": 1, "engine": 2, "web": 3, "gone": 3}
    assert layer_problems(tmp_path / "vault_bmad", layers) == [
        "`gone`: in the layer table, not in vault_bmad/",
        "vault_bmad/config.py:5: config (layer 1) imports vault_bmad.engine.balancer"
        " (engine, layer 2), a layer above",
        "vault_bmad/engine/balancer.py:2: engine (layer 2) imports vault_bmad.web"
        " (web, layer 3), a layer above",
        "vault_bmad/engine/balancer.py:3: engine (layer 2) imports vault_bmad.web.app"
        " (web, layer 3), a layer above",
        "vault_bmad/stray: not in the layer table",
    ]


def test_the_table_is_parsed_from_its_section_and_refuses_doubles() -> None:
    markdown = (
        "# Design\n\n| layer | modules |\n|---|---|\n| 9 | `elsewhere` |\n\n"
        "## Layers\n\nText.\n\n| layer | modules | what |\n|---:|---|---|\n"
        "| 2 | `engine`, `web` | the top |\n| 1 | `config` | the bottom |\n\n## Next\n\n"
        "| layer | modules |\n|---|---|\n| 5 | `later` |\n"
    )
    assert layer_table(markdown) == {"engine": 2, "web": 2, "config": 1}
    with pytest.raises(ValueError, match="`config` is in layers 2 and 1"):
        layer_table(markdown.replace("`engine`, `web`", "`config`"))
    with pytest.raises(ValueError, match="no table"):
        layer_table("# Design\n\n## Layers\n\nNo table yet.\n")
