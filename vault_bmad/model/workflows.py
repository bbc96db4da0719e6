"""Workflows: `type: workflow` notes and BMAD v4 workflow YAML, as ordered steps."""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter

from vault_bmad.errors import Problem
from vault_bmad.model import bmad
from vault_bmad.model.agents import AgentRegistry
from vault_bmad.model.bmad_sequence import read_v4_workflow
from vault_bmad.model.definitions import StepDef, WorkflowDef
from vault_bmad.model.refs import as_list, slug
from vault_bmad.model.sources import model_notes
from vault_bmad.model.steps import StepReader
from vault_bmad.vault.index import VaultIndex


def load_workflows(
    index: VaultIndex, agents: AgentRegistry, problems: list[Problem]
) -> dict[str, WorkflowDef]:
    """Every workflow the vault defines; one with an error is left out, named by it."""
    workflows: dict[str, WorkflowDef] = {}
    candidates = [
        _note_workflow(index, agents, note.path) for note in model_notes(index, "workflow")
    ] + [
        read_v4_workflow(index, agents, path, block)
        for path, block in bmad.v4_workflow_sources(index)
    ]
    for workflow, reader in candidates:
        problems += reader.problems
        if workflow is None:
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
) -> tuple[WorkflowDef | None, StepReader]:
    """A `type: workflow` note: its steps run as their `requires:` allow, side by side
    where they can."""
    note = index.notes[path]
    reader = StepReader(index, agents, path)
    if note.error:
        return None, reader  # already reported as a parse problem
    line = note.property_lines.get("steps")
    raw_steps = note.frontmatter.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        reader.error(line, "a workflow needs `steps:`, a list of steps with id and agent")
        return None, reader
    steps: list[StepDef] = []
    for position, raw in enumerate(raw_steps, start=1):
        if not isinstance(raw, dict):
            reader.error(line, f"step {position} must be a mapping with id and agent")
            continue
        step_id = str(raw.get("id") or f"step-{position}")
        choice = reader.agent_choice(step_id, raw.get("agent"), line)
        if choice is None:
            continue
        requires = tuple(str(r) for r in as_list(raw.get("requires")))
        steps.append(
            StepDef(
                id=step_id,
                agent=choice.agent,
                alternatives=choice.alternatives,
                template=reader.template(step_id, raw.get("template"), line),
                creates=reader.output(step_id, raw.get("creates"), line),
                after=requires,
                requires=requires,
                optional=raw.get("optional") is True,
                condition=str(raw["condition"]) if raw.get("condition") else None,
                notes=str(raw.get("notes") or ""),
            )
        )
    _check_order(reader, line, steps)
    if reader.failed:
        return None, reader
    workflow_id = str(note.frontmatter.get("id") or slug(note.name))
    name = str(note.frontmatter.get("name") or note.name)
    return WorkflowDef(id=workflow_id, name=name, path=path, steps=tuple(steps)), reader


def _check_order(reader: StepReader, line: int | None, steps: list[StepDef]) -> None:
    ids = [step.id for step in steps]
    for step_id in sorted({i for i in ids if ids.count(i) > 1}):
        reader.error(line, f"two steps share the id '{step_id}'")
    outputs: dict[str, str] = {}
    for step in steps:
        for required in step.requires:
            if required not in ids:
                reader.error(line, f"step '{step.id}' requires unknown step '{required}'")
        if step.creates and step.creates in outputs:
            reader.error(
                line,
                f"steps '{outputs[step.creates]}' and '{step.id}' both create {step.creates}; "
                "the second would replace the first",
            )
        if step.creates:
            outputs.setdefault(step.creates, step.id)
    try:
        graph = {s.id: [r for r in s.after if r in ids] for s in steps}
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        reader.error(line, "steps require each other in a cycle: " + " → ".join(exc.args[1]))
