"""Workflows: `type: workflow` notes and BMAD v4 workflow YAML, as ordered steps."""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter
from posixpath import basename, splitext
from typing import Any

from vault_bmad.errors import Problem, VaultPathError
from vault_bmad.model import bmad
from vault_bmad.model.agents import AgentRegistry
from vault_bmad.model.definitions import StepDef, WorkflowDef
from vault_bmad.model.refs import as_list, describe, resolve_ref, slug
from vault_bmad.model.sources import model_notes
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.writer import output_note_path, output_path_problem

DEFAULT_DOCS_FOLDER = "Docs"


class _StepReader:
    """Reads one workflow's steps, collecting problems against its file and line."""

    def __init__(
        self, index: VaultIndex, agents: AgentRegistry, path: str, line: int | None
    ) -> None:
        self.index, self.agents, self.path, self.line = index, agents, path, line
        self.problems: list[Problem] = []

    def problem(self, message: str) -> None:
        self.problems.append(Problem(self.path, self.line, message))

    def agent_id(self, step_id: str, ref: Any) -> str | None:
        agent = self.agents.find(ref, self.path)
        if agent is None:
            known = self.agents.names()
            self.problem(f"step '{step_id}': unknown agent {describe(ref)} (known: {known})")
            return None
        return agent.id

    def output(self, step_id: str, creates: Any) -> str | None:
        if not creates:
            return None
        text = str(creates)
        if "/" not in text:
            text = f"{DEFAULT_DOCS_FOLDER}/{text}"
        try:
            output = output_note_path(text, None)
        except VaultPathError as exc:
            self.problem(f"step '{step_id}': creates {exc}")
            return None
        refused = output_path_problem(output)
        if refused is not None:
            self.problem(f"step '{step_id}': creates {output}, which {refused}")
            return None
        return output

    def template(self, step_id: str, ref: Any) -> str | None:
        if not ref:
            return None
        path = resolve_ref(self.index, ref, self.path)
        if path is None:
            self.problem(f"step '{step_id}': template {describe(ref)} is not a note in the vault")
        return path

    def check_order(self, steps: list[StepDef]) -> None:
        ids = [step.id for step in steps]
        for step_id in {i for i in ids if ids.count(i) > 1}:
            self.problem(f"two steps share the id '{step_id}'")
        for step in steps:
            for required in step.requires:
                if required not in ids:
                    self.problem(f"step '{step.id}' requires unknown step '{required}'")
        try:
            graph = {s.id: [r for r in s.requires if r in ids] for s in steps}
            tuple(TopologicalSorter(graph).static_order())
        except CycleError as exc:
            self.problem("steps require each other in a cycle: " + " → ".join(exc.args[1]))


def load_workflows(
    index: VaultIndex, agents: AgentRegistry, problems: list[Problem]
) -> dict[str, WorkflowDef]:
    workflows: dict[str, WorkflowDef] = {}
    candidates = [
        _note_workflow(index, agents, note.path) for note in model_notes(index, "workflow")
    ] + [
        _v4_workflow(index, agents, path, line, data)
        for path, line, data in bmad.v4_workflow_sources(index)
    ]
    for workflow, found in candidates:
        problems += found
        if workflow is None or found:
            continue
        earlier = workflows.get(workflow.id)
        if earlier is not None:
            message = f"duplicate workflow id '{workflow.id}': {earlier.path} already uses it"
            problems.append(Problem(workflow.path, None, message))
            continue
        workflows[workflow.id] = workflow
    return workflows


def _note_workflow(
    index: VaultIndex, agents: AgentRegistry, path: str
) -> tuple[WorkflowDef | None, list[Problem]]:
    note = index.notes[path]
    if note.error:
        return None, []  # already reported as a parse problem
    reader = _StepReader(index, agents, path, note.property_lines.get("steps"))
    raw_steps = note.frontmatter.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        reader.problem("a workflow needs `steps:`, a list of steps with id and agent")
        return None, reader.problems
    steps: list[StepDef] = []
    for position, raw in enumerate(raw_steps, start=1):
        if not isinstance(raw, dict):
            reader.problem(f"step {position} must be a mapping with id and agent")
            continue
        step_id = str(raw.get("id") or f"step-{position}")
        agent_id = reader.agent_id(step_id, raw.get("agent"))
        if agent_id is None:
            continue
        steps.append(
            StepDef(
                id=step_id,
                agent=agent_id,
                template=reader.template(step_id, raw.get("template")),
                creates=reader.output(step_id, raw.get("creates")),
                requires=tuple(str(r) for r in as_list(raw.get("requires"))),
                optional=bool(raw.get("optional", False)),
                condition=str(raw["condition"]) if raw.get("condition") else None,
                notes=str(raw.get("notes") or ""),
            )
        )
    reader.check_order(steps)
    workflow_id = str(note.frontmatter.get("id") or slug(note.name))
    name = str(note.frontmatter.get("name") or note.name)
    return WorkflowDef(id=workflow_id, name=name, path=path, steps=tuple(steps)), reader.problems


def _v4_workflow(
    index: VaultIndex, agents: AgentRegistry, path: str, line: int | None, data: dict[str, Any]
) -> tuple[WorkflowDef | None, list[Problem]]:
    """A BMAD v4 `sequence`, where `requires` names what an earlier step `creates`."""
    reader = _StepReader(index, agents, path, line)
    steps: list[StepDef] = []
    created_by: dict[str, str] = {}  # file name an earlier step creates -> its step id
    for position, raw in enumerate(as_list(data.get("sequence")), start=1):
        if not isinstance(raw, dict) or "agent" not in raw:
            continue  # `workflow_end:` and free-standing notes are not steps
        creates = str(raw["creates"]) if raw.get("creates") else None
        step_id = slug(splitext(basename(creates))[0]) if creates else f"step-{position}"
        requires: list[str] = []
        for needed in as_list(raw.get("requires")):
            if str(needed) in created_by:
                requires.append(created_by[str(needed)])
            else:
                reader.problem(f"step '{step_id}' requires {needed}, which no earlier step creates")
        agent_id = reader.agent_id(step_id, str(raw["agent"]))
        if creates:
            created_by[creates] = step_id
        if agent_id is None:
            continue
        optional = ", ".join(str(item) for item in as_list(raw.get("optional_steps")))
        notes = str(raw.get("notes") or "") + (f"\nOptional: {optional}" if optional else "")
        steps.append(
            StepDef(
                id=step_id,
                agent=agent_id,
                creates=reader.output(step_id, creates),
                requires=tuple(requires),
                condition=str(raw["condition"]) if raw.get("condition") else None,
                notes=notes.strip(),
            )
        )
    if not steps and not reader.problems:
        reader.problem("the workflow's sequence has no step with an agent")
    reader.check_order(steps)
    source_name = splitext(basename(path))[0]
    workflow_id = str(data.get("id") or slug(source_name))
    workflow = WorkflowDef(
        id=workflow_id,
        name=str(data.get("name") or workflow_id),
        path=path,
        steps=tuple(steps),
        source="bmad-v4",
    )
    return workflow, reader.problems
