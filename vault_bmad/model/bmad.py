"""Read BMAD-METHOD's own files as they are: v4 agents and workflows, and skill folders.

- A v4 agent is Markdown with a fenced YAML block holding `agent:`, `persona:`,
  `commands:` and `dependencies:`.
- A v4 workflow is YAML with `workflow: {id, name, sequence: [...]}`, as a `.yaml` file
  or a fenced block in a note.
- A skill is a folder with `SKILL.md` and a `customize.toml` whose `[agent]` table
  holds the persona.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from posixpath import dirname
from typing import Any

import yaml

from vault_bmad.errors import Problem
from vault_bmad.model.definitions import AgentDef
from vault_bmad.model.fields import build, text_list
from vault_bmad.model.refs import slug
from vault_bmad.model.sources import model_notes
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.notes import Note

_YAML_FENCE = re.compile(r"^```ya?ml[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_PERSONA_PARTS = ("role", "style", "identity", "focus")


@dataclass(frozen=True)
class YamlBlock:
    data: Any
    line: int  # file line where the YAML starts


def yaml_blocks(note: Note) -> list[YamlBlock]:
    """Fenced YAML blocks of a note's body that parse; broken ones are skipped."""
    blocks = []
    for match in _YAML_FENCE.finditer(note.body):
        try:
            data = yaml.safe_load(match.group(1))
        except yaml.YAMLError:
            continue
        line = note.body_line + note.body.count("\n", 0, match.start()) + 1
        blocks.append(YamlBlock(data, line))
    return blocks


def v4_agent(note: Note, problems: list[Problem]) -> AgentDef | None:
    """A BMAD v4 agent file, or None when the note is not one."""
    block = next((b for b in yaml_blocks(note) if _is_v4_agent(b.data)), None)
    if block is None:
        return None
    agent, persona = block.data["agent"], block.data.get("persona") or {}
    if not isinstance(agent, dict) or not isinstance(persona, dict):
        problems.append(
            Problem(note.path, block.line, "BMAD agent: agent and persona must be mappings")
        )
        return None
    values = {
        "id": str(agent.get("id") or slug(note.name)),
        "name": str(agent.get("name") or note.name),
        "title": str(agent.get("title") or ""),
        "icon": str(agent.get("icon") or ""),
        "when_to_use": str(agent.get("whenToUse") or ""),
        "expertise": _expertise(agent.get("title"), persona.get("focus")),
        "persona": persona_text(persona, persona.get("core_principles")),
        "commands": tuple(_command_names(block.data.get("commands"))),
        "dependencies": {
            str(kind): tuple(str(item) for item in items or ())
            for kind, items in (block.data.get("dependencies") or {}).items()
            if isinstance(items, list)
        },
        "path": note.path,
        "source": "bmad-v4",
    }
    return build(AgentDef, values, note, problems)


def _is_v4_agent(data: Any) -> bool:
    return isinstance(data, dict) and "agent" in data and "persona" in data


def skill_agent(index: VaultIndex, note: Note, problems: list[Problem]) -> AgentDef | None:
    """A skill folder's agent: SKILL.md plus the `[agent]` table of customize.toml."""
    folder = dirname(note.path)
    toml_path = f"{folder}/customize.toml" if folder else "customize.toml"
    if toml_path not in index.files:
        return None
    try:
        table = tomllib.loads(index.read_text(toml_path)).get("agent")
    except (tomllib.TOMLDecodeError, OSError) as exc:
        problems.append(Problem(toml_path, None, f"cannot read skill customization: {exc}"))
        return None
    if not isinstance(table, dict):
        problems.append(Problem(toml_path, None, "customize.toml has no [agent] table"))
        return None
    skill_name = str(note.frontmatter.get("name") or folder.rsplit("/", 1)[-1] or note.name)
    persona = {
        "role": table.get("role"),
        "style": table.get("communication_style"),
        "identity": table.get("identity"),
    }
    values = {
        "id": slug(skill_name),
        "name": str(table.get("name") or skill_name),
        "title": str(table.get("title") or ""),
        "icon": str(table.get("icon") or ""),
        "when_to_use": str(note.frontmatter.get("description") or ""),
        "expertise": _expertise(table.get("title"), table.get("role")),
        "persona": (persona_text(persona, table.get("principles")) + "\n\n" + note.body).strip(),
        "path": note.path,
        "source": "skill",
    }
    return build(AgentDef, values, note, problems)


def persona_text(persona: dict[str, Any], principles: Any) -> str:
    """A Markdown persona from BMAD's role/style/identity/focus and principles."""
    lines = [f"**{part.title()}:** {persona[part]}" for part in _PERSONA_PARTS if persona.get(part)]
    if principles:
        items = principles if isinstance(principles, list) else [principles]
        lines += ["", "**Principles:**", *(f"- {item}" for item in items)]
    return "\n".join(lines)


def _expertise(title: Any, focus: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(text_list(title) + text_list(re.sub(r"[;]", ",", str(focus or "")))))


def _command_names(commands: Any) -> list[str]:
    names: list[str] = []
    for item in commands or ():
        if isinstance(item, dict):
            names += [str(key) for key in item]
        elif isinstance(item, str):
            names.append(item.split(":", 1)[0].strip())
    return names


def v4_workflow_sources(index: VaultIndex) -> list[tuple[str, int | None, dict[str, Any]]]:
    """(path, line, workflow mapping) for every v4 workflow in YAML files or fenced blocks."""
    found: list[tuple[str, int | None, dict[str, Any]]] = []
    for path in sorted(p for p in index.files if p.endswith((".yaml", ".yml"))):
        try:
            data = yaml.safe_load(index.read_text(path))
        except (yaml.YAMLError, OSError):
            continue  # a YAML file that is not a workflow is not ours to judge
        if _is_v4_workflow(data):
            found.append((path, None, data["workflow"]))
    for note in model_notes(index):
        if note.type in (None, "workflow") and "workflow:" in note.body:
            found += [
                (note.path, b.line, b.data["workflow"])
                for b in yaml_blocks(note)
                if _is_v4_workflow(b.data)
            ]
    return found


def _is_v4_workflow(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("workflow"), dict)
        and "sequence" in data["workflow"]
    )
