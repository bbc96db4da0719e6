"""The `vault-bmad` command: thin shells over the library that turn errors into messages."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from vault_bmad import __version__
from vault_bmad.model.validate import build_definitions
from vault_bmad.vault.index import VaultIndex

VAULT = click.Path(exists=True, file_okay=False, path_type=Path)
FORMAT = click.Choice(["text", "json"])


@click.group()
@click.version_option(__version__, prog_name="vault-bmad")
def main() -> None:
    """Run AI agents, workflows and tasks written as notes in an Obsidian vault."""


@main.group()
def bench() -> None:
    """Benchmarks that print JSON and compare against peers in the same run."""


@main.command()
@click.argument("vault", type=VAULT)
@click.option("--format", "output_format", type=FORMAT, default="text", show_default=True)
def check(vault: Path, output_format: str) -> None:
    """Validate the vault's agents, workflows and tasks; exit 1 when there are problems."""
    index = VaultIndex.load(vault)
    definitions = build_definitions(index)
    problems = definitions.problems
    counts = {
        "notes": len(index.notes),
        "agents": len(definitions.agents),
        "workflows": len(definitions.workflows),
        "tasks": len(definitions.tasks),
    }
    if output_format == "json":
        click.echo(json.dumps({**counts, "problems": [p.as_dict() for p in problems]}, indent=2))
    else:
        for problem in problems:
            click.echo(str(problem))
        summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        click.echo(f"{summary}, {len(problems)} problem{'' if len(problems) == 1 else 's'}")
    sys.exit(1 if problems else 0)
