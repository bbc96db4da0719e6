"""Tasks: `type: task` notes, with references resolved and workflow runs expanded into steps."""

from __future__ import annotations

from typing import Any

from vault_bmad.errors import Problem, VaultPathError, warning
from vault_bmad.model.agents import AgentRegistry
from vault_bmad.model.definitions import GENERATION_KEYS, TaskDef, WorkflowDef
from vault_bmad.model.fields import build, known, text_list
from vault_bmad.model.refs import as_list, describe, resolve_ref, slug, template_ref
from vault_bmad.model.runs import RunOptions, expand_run
from vault_bmad.model.sources import model_notes
from vault_bmad.vault.callout import strip_callout
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.notes import Note
from vault_bmad.vault.writer import (
    default_output_path,
    output_note_path,
    output_path_problem,
    unwritable_reason,
)

_SCALAR_KEYS = (
    "status",
    "priority",
    "criticality",
    "complexity",
    "timeout",
    "retries",
    *GENERATION_KEYS,
)
MAX_EPICS = 100  # turns of a repeated step one run may take


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
        output_folder: str,
    ) -> None:
        self.index, self.agents, self.workflows = index, agents, workflows
        self.ids_by_path, self.output_folder = ids_by_path, output_folder

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
            values["template"], why = template_ref(self.index, fm["template"], note.path)
            if values["template"] is None:
                problem("template", why)
        values["output"] = default_output_path(note.path, self.output_folder)
        if fm.get("output"):
            try:
                values["output"] = output_note_path(str(fm["output"]))
            except VaultPathError as exc:
                problem("output", f"output {exc}")
            else:
                refused = output_path_problem(values["output"])
                if refused is not None:
                    problem("output", f"output {values['output']} {refused}")
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
                "body": strip_callout(note.body).strip(),
                "tags": note.tags,
            },
            note,
            found,
        )
        options = self._run_options(note, workflow, found) if workflow else RunOptions()
        problems += found
        if task is None or any(p.is_error for p in found):
            return []
        return expand_run(task, workflow, options, self.output_folder) if workflow else [task]

    def _run_options(self, note: Note, workflow: WorkflowDef, found: list[Problem]) -> RunOptions:
        """How the starting task asks the workflow to run; see `model.runs`."""
        fm, lines = note.frontmatter, note.property_lines
        conditions = text_list(fm.get("conditions"))
        known_words = workflow.conditions()
        unknown = [c for c in conditions if c not in known_words]
        if unknown:
            known_text = ", ".join(known_words) or "none"
            found.append(
                warning(
                    note.path,
                    lines.get("conditions"),
                    f"conditions {', '.join(unknown)}: workflow {workflow.id} asks for none "
                    f"of them (its conditions: {known_text})",
                )
            )
        include_optional = fm.get("include_optional", False)
        if not isinstance(include_optional, bool):
            message = f"include_optional must be true or false, not {include_optional!r}"
            found.append(Problem(note.path, lines.get("include_optional"), message))
        epics = fm.get("epics")
        if isinstance(epics, int) and not isinstance(epics, bool) and 0 <= epics <= MAX_EPICS:
            names = tuple(f"Epic {number}" for number in range(1, epics + 1))
        elif isinstance(epics, list | str | type(None)) and len(text_list(epics)) <= MAX_EPICS:
            names = text_list(epics)
        else:
            message = f"epics must be a list of epic names or a count up to {MAX_EPICS}"
            found.append(Problem(note.path, lines.get("epics"), message))
            names = ()
        return RunOptions(frozenset(conditions), include_optional is True, names)

    def _workflow(self, ref: Any, note: Note, problem: Any) -> WorkflowDef | None:
        if not ref:
            return None
        path = resolve_ref(self.index, ref, note.path)
        for workflow in self.workflows.values():
            if workflow.path == path or workflow.id == str(ref).strip():
                return workflow
        problem("workflow", f"workflow {describe(ref)} is not a valid workflow in the vault")
        return None


def load_tasks(
    index: VaultIndex,
    agents: AgentRegistry,
    workflows: dict[str, WorkflowDef],
    problems: list[Problem],
    output_folder: str,
) -> dict[str, TaskDef]:
    """The vault's tasks; those that name no `output:` write under `output_folder`."""
    notes = []
    for note in model_notes(index, "task"):
        refused = None if note.error else unwritable_reason(index.root / note.path)
        if refused is not None:
            problems.append(Problem(note.path, None, f"the note {refused}"))
        elif not note.error:
            notes.append(note)
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
    reader = _TaskReader(index, agents, workflows, ids_by_path, output_folder)
    tasks: dict[str, TaskDef] = {}
    for note in notes:
        if note.path in ids_by_path:
            tasks.update((task.id, task) for task in reader.read(note, problems))
    return tasks
