"""vault-bmad: run AI agents, workflows and tasks written as notes in an Obsidian vault."""

__version__ = "0.1.0"
