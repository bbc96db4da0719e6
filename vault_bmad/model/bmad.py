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
from collections.abc import Mapping
from dataclasses import dataclass, field
from posixpath import dirname
from typing import Any

import yaml

from vault_bmad.errors import Problem
from vault_bmad.model.definitions import AgentDef
from vault_bmad.model.fields import build, text_list
from vault_bmad.model.refs import slug
from vault_bmad.model.sources import model_notes
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.notes import SAFE_YAML_LOADER, Note

_YAML_FENCE = re.compile(r"^```ya?ml[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_PERSONA_PARTS = ("role", "style", "identity", "focus")
_PROSE = re.compile(r"[.!?](\s|$)")  # a sentence ends: expertise written as prose

Path = tuple[Any, ...]  # keys and list positions from the top of a YAML document


@dataclass(frozen=True)
class YamlBlock:
    """Parsed YAML with the file line of every mapping key and list item in it."""

    data: Any
    line: int  # file line where the YAML starts
    lines: Mapping[Path, int] = field(default_factory=dict)

    def line_of(self, *path: Any) -> int:
        """The file line of the key or item at `path`, else of the nearest one around it."""
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path, self.line)


def load_yaml(text: str, first_line: int = 1) -> YamlBlock:
    """Parse YAML, keeping where each key and item is. Raises yaml.YAMLError."""
    loader = SAFE_YAML_LOADER(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    lines: dict[Path, int] = {}
    seen: set[int] = set()  # an alias repeats a node: walk it once
    stack: list[tuple[yaml.Node, Path]] = [(node, ())] if node is not None else []
    while stack:
        current, path = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode):
                    lines[(*path, key.value)] = first_line + key.start_mark.line
                    stack.append((value, (*path, key.value)))
        elif isinstance(current, yaml.SequenceNode):
            for position, item in enumerate(current.value):
                lines[(*path, position)] = first_line + item.start_mark.line
                stack.append((item, (*path, position)))
    return YamlBlock(data, first_line, lines)


def yaml_blocks(note: Note) -> list[YamlBlock]:
    """Fenced YAML blocks of a note's body that parse; broken ones are skipped."""
    blocks = []
    for match in _YAML_FENCE.finditer(note.body):
        line = note.body_line + note.body.count("\n", 0, match.start()) + 1
        try:
            blocks.append(load_yaml(match.group(1), line))
        except yaml.YAMLError:
            continue
    return blocks


def v4_agent(note: Note, problems: list[Problem]) -> AgentDef | None:
    """A BMAD v4 agent file, or None when the note is not one."""
    block = next((b for b in yaml_blocks(note) if _is_v4_agent(b.data)), None)
    if block is None:
        return None
    data = block.data
    agent, persona = data["agent"], data.get("persona") or {}
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
        # dev.md keeps its core_principles beside `persona:`, not in it
        "persona": persona_text(
            persona,
            text_items(persona.get("core_principles")) + text_items(data.get("core_principles")),
        ),
        "commands": tuple(_command_names(data.get("commands"))),
        "dependencies": {
            str(kind): tuple(str(item) for item in items or ())
            for kind, items in (data.get("dependencies") or {}).items()
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
        "persona": (
            persona_text(persona, text_items(table.get("principles"))) + "\n\n" + note.body
        ).strip(),
        "commands": tuple(_menu_commands(table.get("menu"))),
        "path": note.path,
        "source": "skill",
    }
    return build(AgentDef, values, note, problems)


def persona_text(persona: dict[str, Any], principles: list[str]) -> str:
    """A Markdown persona from BMAD's role/style/identity/focus and principles."""
    lines = [f"**{part.title()}:** {persona[part]}" for part in _PERSONA_PARTS if persona.get(part)]
    if principles:
        lines += ["", "**Principles:**", *(f"- {item}" for item in principles)]
    return "\n".join(lines)


def text_items(value: Any) -> list[str]:
    """A YAML or TOML list of texts, or one text, as a list; missing or empty gives [].
    YAML reads `- CRITICAL: Story has...` as a mapping: it is the text it was written as."""
    items = value if isinstance(value, list) else [value]
    return [
        "; ".join(f"{k}: {v}" for k, v in item.items()) if isinstance(item, dict) else str(item)
        for item in items
        if item not in (None, "")
    ]


def _expertise(title: Any, focus: Any) -> tuple[str, ...]:
    """The title, then the focus: a list of phrases is split at its commas and semicolons
    ("a, b, and c"), while prose (it has a sentence's end) stays whole."""
    text = str(focus or "").strip()
    parts = [text] if _PROSE.search(text) else re.split(r"[,;]", text)
    phrases = [re.sub(r"^(and|or)\s+", "", part.strip()) for part in parts]
    return tuple(dict.fromkeys(text_list(title) + tuple(p for p in phrases if p)))


def _menu_commands(menu: Any) -> list[str]:
    """A skill's `[[agent.menu]]` items as commands: `CA: bmad-architecture`, or the code
    alone for an item that runs a prompt."""
    commands = []
    for item in menu if isinstance(menu, list) else ():
        if isinstance(item, dict) and item.get("code"):
            skill = item.get("skill")
            commands.append(f"{item['code']}: {skill}" if skill else str(item["code"]))
    return commands


def _command_names(commands: Any) -> list[str]:
    names: list[str] = []
    for item in commands or ():
        if isinstance(item, dict):
            names += [str(key) for key in item]
        elif isinstance(item, str):
            names.append(item.split(":", 1)[0].strip())
    return names


def v4_workflow_sources(index: VaultIndex) -> list[tuple[str, YamlBlock]]:
    """(path, YAML holding `workflow:`) for every v4 workflow in YAML files or fenced blocks."""
    found: list[tuple[str, YamlBlock]] = []
    for path in sorted(p for p in index.files if p.endswith((".yaml", ".yml"))):
        try:
            block = load_yaml(index.read_text(path))
        except (yaml.YAMLError, OSError):
            continue  # a YAML file that is not a workflow is not ours to judge
        if _is_v4_workflow(block.data):
            found.append((path, block))
    for note in model_notes(index):
        if note.type in (None, "workflow") and "workflow:" in note.body:
            found += [(note.path, b) for b in yaml_blocks(note) if _is_v4_workflow(b.data)]
    return found


def _is_v4_workflow(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("workflow"), dict)
        and "sequence" in data["workflow"]
    )
