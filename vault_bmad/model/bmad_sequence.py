"""A BMAD v4 workflow's `sequence:` as steps, read for what BMAD means by each key.

- The sequence is the order: each step starts after the one before it ended (or was
  skipped). `requires:` names what a step reads, never when it runs.
- `requires: prd.md` reads the latest version an earlier step `creates` or `updates`
  (an `existing_` prefix, or `a_or_b`, names them too). A name no earlier step writes
  means everything written so far, or what the user provides: the step reads every
  earlier output. Names that say so (`all_artifacts_in_project`, `any_flagged_documents`)
  are read quietly; any other is a warning.
- `agent: analyst/pm` names alternatives, `agent: various` any agent that fits. An entry
  without an agent (`step: workflow_end`) is guidance: shown in the run with its notes.
  A `routes:` entry is a routing step, whose routes the run's `conditions:` choose.
- `creates: prd.md` writes Docs/prd.md; an artifact that is not a note (`sharded_docs`,
  `v0_prompt (optional)`, free text) is the step's own note. A parenthesised qualifier is
  a hint, kept in the step's notes.
- `updates: prd.md` writes a new version into the step's own note; the earlier one stays.
- `validates: all_artifacts` reads everything written before it.
- `uses: po-master-checklist` names a file of the agent's own dependencies: the note is
  handed to the agent when the vault holds it.
- `condition`, `optional`, `optional_steps` and `repeats` are kept for the run to apply.
"""

from __future__ import annotations

import re
from posixpath import basename, splitext
from typing import Any

from vault_bmad.model.agents import AgentRegistry
from vault_bmad.model.bmad import YamlBlock, text_items
from vault_bmad.model.definitions import Route, StepDef, WorkflowDef
from vault_bmad.model.refs import as_list, slug
from vault_bmad.model.steps import AgentChoice, StepReader
from vault_bmad.vault.index import VaultIndex

_QUALIFIED = re.compile(r"^(?P<name>.*?)\s*(?P<hint>\([^()]*\))?\s*$")
_EVERYTHING = ("all_", "any_")  # `all_artifacts_in_project`, `any_flagged_documents`
_ID_LIKE = re.compile(r"^[\w.-]+$")
_ENTRY_KEYS = {"agent", "step", "action", "creates", "updates", "validates", "requires", "uses"}
_ENTRY_KEYS |= {"condition", "optional", "optional_steps", "repeats", "routes", "notes"}


def artifact(text: Any) -> tuple[str, str]:
    """`v0_prompt (optional)` gives ("v0_prompt", "(optional)")."""
    match = _QUALIFIED.match(str(text).strip())
    assert match is not None  # the pattern matches any text
    return match["name"], match["hint"] or ""


def _is_note_name(name: str) -> bool:
    return name.lower().endswith(".md")


class _Sequence:
    """Reads the entries in order, remembering who wrote each artifact last."""

    def __init__(
        self, index: VaultIndex, agents: AgentRegistry, path: str, block: YamlBlock
    ) -> None:
        self.reader = StepReader(index, agents, path)
        self.block = block
        self.steps: list[StepDef] = []
        self.written: dict[str, str] = {}  # artifact or step name -> id of its latest writer

    def line(self, position: int, key: str | None = None) -> int:
        path = ("workflow", "sequence", position) + ((key,) if key else ())
        return self.block.line_of(*path)

    def read(self, entries: list[Any]) -> None:
        for position, raw in enumerate(entries):
            if not isinstance(raw, dict):
                self.reader.error(
                    self.line(position), f"sequence entry {position + 1} must be a mapping"
                )
                continue
            step = self._step(position, raw)
            if step is not None:
                self.steps.append(step)

    def _step(self, position: int, raw: dict[str, Any]) -> StepDef | None:
        raw = _older_form(raw)
        name = str(raw.get("step") or "")
        creates, creates_hint = artifact(raw["creates"]) if raw.get("creates") else ("", "")
        updates, updates_hint = artifact(raw["updates"]) if raw.get("updates") else ("", "")
        validates = str(raw.get("validates") or "")
        step_id = self._new_id(position, name, creates, raw.get("action"), updates, validates)
        choice: AgentChoice | None = AgentChoice()
        if raw.get("agent"):
            choice = self.reader.agent_choice(step_id, raw["agent"], self.line(position, "agent"))
        routes = self._routes(step_id, position, raw.get("routes"))
        if choice is None or routes is None:
            return None
        earlier = [step.id for step in self.steps if not step.guidance]
        requires: list[str] = []
        for needed in as_list(raw.get("requires")):
            requires += self._reads(step_id, str(needed), earlier, self.line(position, "requires"))
        if validates:
            requires += self._reads(step_id, validates, earlier, None)
        revised = self.written.get(updates)
        requires += [revised] if revised else (earlier if updates else [])
        uses = tuple(text_items(raw.get("uses")))
        notes = [str(raw.get("notes") or "").strip()]
        notes += [f"Creates: {creates} {creates_hint}".strip()] if creates_hint else []
        notes += [f"Updates: {updates} {updates_hint}".strip()] if updates else []
        notes += [f"Validates: {validates}"] if validates else []
        notes += [f"Uses: {', '.join(uses)}"] if uses else []
        for written in (creates, updates, name if raw.get("agent") else ""):
            if written:
                self.written[written] = step_id
        output = creates if _is_note_name(creates) else None
        return StepDef(
            id=step_id,
            agent=choice.agent,
            alternatives=choice.alternatives,
            guidance=not raw.get("agent"),
            creates=self.reader.output(step_id, output, self.line(position, "creates")),
            updates=revised,
            after=(self.steps[-1].id,) if self.steps else (),
            requires=tuple(dict.fromkeys(requires)),
            optional=raw.get("optional") is True,
            condition=str(raw["condition"]) if raw.get("condition") else None,
            optional_steps=tuple(text_items(raw.get("optional_steps"))),
            uses=uses,
            context=self.reader.used_notes(uses, choice),
            repeats=str(raw["repeats"]) if raw.get("repeats") else None,
            routes=routes,
            notes="\n\n".join(part for part in notes if part),
        )

    def _new_id(self, position: int, *names: Any) -> str:
        """The step's name, else what it creates, its action, what it updates or validates."""
        name, creates, action, updates, validates = (str(n or "") for n in names)
        base = (
            name
            or splitext(basename(creates))[0]
            or (action if _ID_LIKE.match(action) else "")
            or (f"update-{splitext(updates)[0]}" if updates else "")
            or (f"validate-{validates}" if validates else "")
            or f"step-{position + 1}"
        )
        step_id = slug(base).replace("/", "-")
        taken = {step.id for step in self.steps}
        return step_id if step_id not in taken else f"{step_id}-{position + 1}"

    def _reads(self, step_id: str, name: str, earlier: list[str], line: int | None) -> list[str]:
        """The steps whose outputs a `requires:` (or `validates:`) name means."""
        wanted, _ = artifact(name)
        if wanted in self.written:
            return [self.written[wanted]]
        if wanted.startswith(_EVERYTHING):
            return earlier
        named = [
            self.written[alias]
            for part in wanted.split("_or_")
            for alias in (part, part.removeprefix("existing_"))
            if alias in self.written
        ]
        if named:
            return named
        if line is not None:
            self.reader.warn(
                line,
                f"step '{step_id}' requires {name}, which no earlier step creates: "
                "it reads everything written before it, and what you provide",
            )
        return earlier

    def _routes(self, step_id: str, position: int, raw: Any) -> tuple[Route, ...] | None:
        if not raw:
            return ()
        line = self.line(position, "routes")
        if not isinstance(raw, dict):
            self.reader.error(line, f"step '{step_id}': routes must map a route's name to it")
            return None
        routes = []
        for name, spec in raw.items():
            spec = spec if isinstance(spec, dict) else {"notes": spec}
            choice: AgentChoice | None = AgentChoice()
            if spec.get("agent"):
                choice = self.reader.agent_choice(f"{step_id}/{name}", spec["agent"], line)
            if choice is None:
                return None
            uses = tuple(text_items(spec.get("uses")))
            routes.append(
                Route(
                    name=str(name),
                    agent=choice.agent or (choice.alternatives[:1] or (None,))[0],
                    uses=uses,
                    context=self.reader.used_notes(uses, choice),
                    notes=str(spec.get("notes") or "").strip(),
                    ends_run=spec.get("continue") is None,
                )
            )
        return tuple(routes)


def _older_form(raw: dict[str, Any]) -> dict[str, Any]:
    """Older v4 files name guidance by a key BMAD does not define: `- workflow_end:` holding
    `action:` and `notes:`, or with them beside it and no value. As `step: workflow_end`."""
    if "agent" in raw or "step" in raw:
        return raw
    names = [key for key in raw if key not in _ENTRY_KEYS]
    if len(names) != 1:
        return raw
    name, value = names[0], raw[names[0]]
    if isinstance(value, dict):
        return {**value, "step": name}
    return {**raw, "step": name} if value is None else raw


def read_v4_workflow(
    index: VaultIndex, agents: AgentRegistry, path: str, block: YamlBlock
) -> tuple[WorkflowDef | None, StepReader]:
    """The workflow, or None when an error keeps it out; the reader holds the problems."""
    data = block.data["workflow"]
    sequence = _Sequence(index, agents, path, block)
    entries = data.get("sequence")
    if not isinstance(entries, list) or not entries:
        line = block.line_of("workflow", "sequence")
        sequence.reader.error(line, "the workflow's sequence must be a list of steps")
        return None, sequence.reader
    sequence.read(entries)
    if sequence.reader.failed:
        return None, sequence.reader
    workflow_id = str(data.get("id") or slug(splitext(basename(path))[0]))
    workflow = WorkflowDef(
        id=workflow_id,
        name=str(data.get("name") or workflow_id),
        path=path,
        steps=tuple(sequence.steps),
        source="bmad-v4",
    )
    return workflow, sequence.reader
