"""Who may run which program through the command runtime: the rule the runtime applies to a
task and `check` to an agent, kept apart from the process handling so `check` loads none of it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from vault_bmad.errors import Problem

if TYPE_CHECKING:
    from vault_bmad.config import Settings
    from vault_bmad.model.definitions import AgentDef

HOW_TO_ENABLE = (
    "set `command_enabled = true` in your config file "
    "(~/.config/vault-bmad/config.toml, or $XDG_CONFIG_HOME/vault-bmad/config.toml) "
    "or VAULT_BMAD_COMMAND_ENABLED=1 in the environment; "
    "the vault's own vault-bmad.toml cannot turn it on"
)


def refusal(
    command: tuple[str, ...], who: str, enabled: bool, allowlist: Iterable[str]
) -> str | None:
    """Why `who` ("task x", "agent y") may not run `command`, or None when it may."""
    if not enabled:
        return f"{who} needs the command runtime, which is off; to turn it on, {HOW_TO_ENABLE}"
    if not command:
        return f"{who} uses the command runtime but names no command to run"
    program, allowed = command[0], sorted(allowlist)
    if allowed and program not in allowed:
        return (
            f"{who} wants to run {program!r}, which is not in command_allowlist "
            f"({', '.join(allowed)}); add it there in your config file to allow it"
        )
    return None


def agent_problems(agents: Iterable[AgentDef], settings: Settings) -> list[Problem]:
    """What `check` says of agents the command runtime settings will not let run."""
    return [
        Problem(agent.path, None, found)
        for agent in agents
        if agent.runtime == "command"
        and (
            found := refusal(
                agent.command,
                f"agent {agent.id}",
                settings.command_enabled,
                settings.command_allowlist,
            )
        )
        is not None
    ]
