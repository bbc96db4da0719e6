"""Turn a vault index into validated definitions and a list of problems.

A bad note yields problems naming its file (and line where known) and is left out;
it never hides the good notes. A task note vault-bmad marked invalid stays invalid until
the user changes what they wrote in it (`InvalidMark`), even where it reads well now: its
`status: banana` became `status: invalid`, which hides what was wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import TYPE_CHECKING

from vault_bmad.config import Settings
from vault_bmad.errors import Problem
from vault_bmad.model.sources import conflict_problems, model_notes

if TYPE_CHECKING:
    from vault_bmad.model.definitions import AgentDef, TaskDef, WorkflowDef
    from vault_bmad.vault.index import VaultIndex

ROLES = ("agent", "workflow", "task", "template", "report")


@dataclass(frozen=True)
class Definitions:
    """Everything the vault defines, plus the problems that kept notes out. Its parts are
    validated models already, so it is a plain container: building it needs no pydantic."""

    agents: dict[str, AgentDef] = field(default_factory=dict)
    workflows: dict[str, WorkflowDef] = field(default_factory=dict)
    tasks: dict[str, TaskDef] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()  # sorted by path and line


@dataclass(frozen=True)
class InvalidMark:
    """What a task note said when vault-bmad marked it invalid: the hash of the user's part
    of it (`writer.user_content_sha`) and why."""

    content_sha: str
    error: str


def build_definitions(
    index: VaultIndex,
    invalid_marks: Mapping[str, InvalidMark] | None = None,
    output_folder: str = Settings.output_folder,
) -> Definitions:
    """The vault's definitions and problems; `invalid_marks` (by note path) are the task
    notes vault-bmad marked invalid before; tasks that name no `output:` write under
    `output_folder` (the setting).

    The loaders, and the pydantic models they build, are imported only when the vault has
    notes to read: `check` on an empty vault loads neither (tests/test_start_imports.py).
    """
    problems = [
        Problem(note.path, note.error_line, note.error)
        for note in index.notes.values()
        if note.error
    ]
    problems += conflict_problems(index)
    if not model_notes(index):
        return Definitions(problems=_in_order(problems))
    from vault_bmad.model.agents import load_agents
    from vault_bmad.model.outputs import output_problems
    from vault_bmad.model.tasks import load_tasks
    from vault_bmad.model.workflows import load_workflows

    agents = load_agents(index, problems)
    workflows = load_workflows(index, agents, problems)
    tasks = load_tasks(index, agents, workflows, problems, output_folder)
    for cycle in find_cycles(tasks):
        on_cycle = [tasks[task_id] for task_id in cycle]
        names = " → ".join(task.path for task in [*on_cycle, on_cycle[0]])
        for path in dict.fromkeys(task.path for task in on_cycle):
            problems.append(Problem(path, None, f"dependency cycle: {names}"))
        for task_id in cycle:
            tasks.pop(task_id, None)
    late = output_problems(index, tasks) + still_invalid(index, tasks, invalid_marks or {})
    dropped = {problem.path for problem in late}
    tasks = {task_id: task for task_id, task in tasks.items() if task.path not in dropped}
    problems += late
    return Definitions(agents.by_id, workflows, tasks, _in_order(problems))


def _in_order(problems: list[Problem]) -> tuple[Problem, ...]:
    """Each problem once, sorted by path and line."""
    return tuple(sorted(set(problems), key=lambda p: (p.path, p.line or 0, p.message)))


def still_invalid(
    index: VaultIndex, tasks: dict[str, TaskDef], marks: Mapping[str, InvalidMark]
) -> list[Problem]:
    """The marked error again for each task note that still says `status: invalid` and whose
    user's part has not changed since it was marked."""
    from vault_bmad.vault.writer import user_content_sha  # loaded with the loaders

    problems = []
    for path in sorted({task.path for task in tasks.values() if task.status == "invalid"}):
        mark, note = marks.get(path), index.get(path)
        if mark is not None and note is not None and mark.content_sha == user_content_sha(note):
            problems.append(Problem(path, note.property_lines.get("status"), mark.error))
    return problems


def find_cycles(tasks: dict[str, TaskDef]) -> list[list[str]]:
    """Every dependency cycle among the tasks, each as the ids on it, in order."""
    graph = {task.id: {dep for dep in task.depends_on if dep in tasks} for task in tasks.values()}
    cycles: list[list[str]] = []
    while True:
        try:
            tuple(TopologicalSorter(graph).static_order())
            return cycles
        except CycleError as exc:
            cycle = list(dict.fromkeys(exc.args[1]))
            cycles.append(cycle)
            for node in cycle:
                graph.pop(node, None)
            graph = {node: deps - set(cycle) for node, deps in graph.items()}
