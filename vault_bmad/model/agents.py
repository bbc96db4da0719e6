"""Agents: from `type: agent` notes, BMAD v4 agent files and BMAD skill folders."""

from __future__ import annotations

import shlex

from vault_bmad.errors import Problem, warning
from vault_bmad.model import bmad
from vault_bmad.model.definitions import GENERATION_KEYS, AgentDef
from vault_bmad.model.fields import build, known, text_list
from vault_bmad.model.refs import link_path, resolve_ref, slug
from vault_bmad.model.sources import model_notes
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.notes import Note

_AGENT_KEYS = (
    "id",
    "name",
    "title",
    "icon",
    "runtime",
    "model",
    "weight",
    "capacity",
    *GENERATION_KEYS,
)


class AgentRegistry:
    """Agents by id, findable by note link, id or name as a task's `agent:` may give them."""

    def __init__(self, index: VaultIndex) -> None:
        self.index = index
        self.by_id: dict[str, AgentDef] = {}

    def add(self, agent: AgentDef, problems: list[Problem]) -> None:
        earlier = self.by_id.get(agent.id)
        if earlier is not None:
            message = f"duplicate agent id '{agent.id}': {earlier.path} already uses it"
            problems.append(Problem(agent.path, None, message))
            return
        namesake = next(
            (a for a in self.by_id.values() if a.name.lower() == agent.name.lower()), None
        )
        if namesake is not None:
            message = (
                f"agents {namesake.id} ({namesake.path}) and {agent.id} share the name "
                f"{agent.name!r}; `agent: {agent.name}` means {namesake.id}, "
                f"so name {agent.id} by its id"
            )
            problems.append(warning(agent.path, None, message))
        self.by_id[agent.id] = agent

    def find(self, ref: object, source: str) -> AgentDef | None:
        """The agent a reference names: its note (`[[Architect]]`), its id, or its name."""
        if not isinstance(ref, str) or not ref.strip():
            return None
        path = resolve_ref(self.index, ref, source)
        wanted = link_path(ref).lower()
        agents = self.by_id.values()
        by_path = (a for a in agents if path is not None and a.path == path)
        by_id = (a for a in agents if a.id.lower() == wanted)
        by_name = (a for a in agents if a.name.lower() == wanted)
        return next(by_path, None) or next(by_id, None) or next(by_name, None)

    def names(self) -> str:
        return ", ".join(sorted(self.by_id)) or "none"


def load_agents(index: VaultIndex, problems: list[Problem]) -> AgentRegistry:
    registry = AgentRegistry(index)
    for note in model_notes(index):
        if note.error:
            continue
        if note.type == "agent":
            agent = agent_from_note(note, problems)
        elif note.path.rsplit("/", 1)[-1] == "SKILL.md":
            agent = bmad.skill_agent(index, note, problems)
        elif note.type is None:
            agent = bmad.v4_agent(note, problems)
        else:
            continue
        if agent is not None:
            registry.add(agent, problems)
    return registry


def agent_from_note(note: Note, problems: list[Problem]) -> AgentDef | None:
    values = known(note.frontmatter, _AGENT_KEYS)
    values.setdefault("id", slug(note.name))
    values.setdefault("name", note.name)
    values["id"] = str(values["id"])
    values["name"] = str(values["name"])
    values["expertise"] = text_list(note.frontmatter.get("expertise"))
    command = note.frontmatter.get("command")
    if command:
        values["command"] = shlex.split(command) if isinstance(command, str) else command
    return build(
        AgentDef, {**values, "path": note.path, "persona": note.body.strip()}, note, problems
    )
