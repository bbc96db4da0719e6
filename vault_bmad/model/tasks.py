"""Tasks: `type: task` notes, with references resolved and workflow runs expanded into steps."""

from __future__ import annotations

from typing import Any

from vault_bmad.errors import Problem, VaultPathError
from vault_bmad.model.agents import AgentRegistry
from vault_bmad.model.definitions import GENERATION_KEYS, TaskDef, WorkflowDef
from vault_bmad.model.fields import build, known
from vault_bmad.model.refs import as_list, describe, resolve_ref, slug
from vault_bmad.model.sources import model_notes
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.notes import Note
from vault_bmad.vault.paths import normalize_vault_path

_SCALAR_KEYS = (
    "status",
    "priority",
    "criticality",
    "complexity",
    "timeout",
    "retries",
    *GENERATION_KEYS,
)


def task_id(note: Note) -> str:
    """A task's id: its `id` property, or its path as a slug (`tasks/write-the-prd`)."""
    explicit = note.frontmatter.get("id")
    return str(explicit) if explicit else slug(note.path.removesuffix(".md"))


class _TaskReader:
    def __init__(
        self,
        index: VaultIndex,
        agents: AgentRegistry,
        workflows: dict[str, WorkflowDef],
        ids_by_path: dict[str, str],
    ) -> None:
        self.index, self.agents, self.workflows = index, agents, workflows
        self.ids_by_path = ids_by_path

    def read(self, note: Note, problems: list[Problem]) -> list[TaskDef]:
        """The note's task, and one task per step when it starts a workflow run."""
        found: list[Problem] = []

        def problem(key: str, message: str) -> None:
            found.append(Problem(note.path, note.property_lines.get(key), message))

        fm = note.frontmatter
        values: dict[str, Any] = known(fm, _SCALAR_KEYS)
        agent_ref = fm.get("agent")
        if agent_ref:
            agent = self.agents.find(agent_ref, note.path)
            if agent is None:
                known_agents = self.agents.names()
                problem("agent", f"unknown agent {describe(agent_ref)} (known: {known_agents})")
            else:
                values["agent"] = agent.id
        depends_on = []
        for ref in as_list(fm.get("depends_on")):
            target = resolve_ref(self.index, ref, note.path)
            if target is None:
                problem("depends_on", f"depends on {describe(ref)}, which is not in the vault")
            elif target not in self.ids_by_path:
                problem("depends_on", f"depends on {describe(ref)}, which is not a task note")
            else:
                depends_on.append(self.ids_by_path[target])
        context = []
        for ref in as_list(fm.get("context")):
            target = resolve_ref(self.index, ref, note.path)
            if target is None:
                problem("context", f"context {describe(ref)} is not a note in the vault")
            else:
                context.append(target)
        if fm.get("template"):
            values["template"] = resolve_ref(self.index, fm["template"], note.path)
            if values["template"] is None:
                problem("template", f"template {describe(fm['template'])} is not in the vault")
        if fm.get("output"):
            try:
                values["output"] = normalize_vault_path(str(fm["output"]))
            except VaultPathError as exc:
                problem("output", f"output {exc}")
        workflow = self._workflow(fm.get("workflow"), note, problem)
        task = build(
            TaskDef,
            {
                **values,
                "id": task_id(note),
                "path": note.path,
                "title": note.name,
                "depends_on": tuple(dict.fromkeys(depends_on)),
                "context": tuple(dict.fromkeys(context)),
                "body": note.body.strip(),
                "tags": note.tags,
            },
            note,
            found,
        )
        problems += found
        if task is None or found:
            return []
        return expand_run(task, workflow) if workflow else [task]

    def _workflow(self, ref: Any, note: Note, problem: Any) -> WorkflowDef | None:
        if not ref:
            return None
        path = resolve_ref(self.index, ref, note.path)
        for workflow in self.workflows.values():
            if workflow.path == path or workflow.id == str(ref).strip():
                return workflow
        problem("workflow", f"workflow {describe(ref)} is not a valid workflow in the vault")
        return None


def expand_run(task: TaskDef, workflow: WorkflowDef) -> list[TaskDef]:
    """A workflow run: one task per step, then the starting task, which waits for them all."""
    step_ids = {step.id: f"{task.id}/{step.id}" for step in workflow.steps}
    steps = [
        task.model_copy(
            update={
                "id": step_ids[step.id],
                "title": f"{task.title}: {step.id}",
                "agent": step.agent,
                "template": step.template or task.template,
                "output": step.creates,
                "depends_on": task.depends_on + tuple(step_ids[r] for r in step.requires),
                "body": "\n\n".join(part for part in (task.body, step.notes) if part),
                "workflow": workflow.id,
                "step": step.id,
            }
        )
        for step in workflow.steps
    ]
    run = task.model_copy(
        update={
            "workflow": workflow.id,
            "steps": tuple(step_ids.values()),
            "depends_on": task.depends_on + tuple(step_ids.values()),
        }
    )
    return [*steps, run]


def load_tasks(
    index: VaultIndex,
    agents: AgentRegistry,
    workflows: dict[str, WorkflowDef],
    problems: list[Problem],
) -> dict[str, TaskDef]:
    notes = [note for note in model_notes(index, "task") if not note.error]
    ids_by_path: dict[str, str] = {}
    paths_by_id: dict[str, str] = {}
    for note in notes:
        note_id = task_id(note)
        if note_id in paths_by_id:
            message = f"duplicate task id '{note_id}': {paths_by_id[note_id]} already uses it"
            problems.append(Problem(note.path, note.property_lines.get("id"), message))
            continue
        ids_by_path[note.path] = note_id
        paths_by_id[note_id] = note.path
    reader = _TaskReader(index, agents, workflows, ids_by_path)
    tasks: dict[str, TaskDef] = {}
    for note in notes:
        if note.path in ids_by_path:
            tasks.update((task.id, task) for task in reader.read(note, problems))
    return tasks
