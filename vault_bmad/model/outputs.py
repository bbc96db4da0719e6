"""Where tasks write: the problems of outputs that would land where they must not.

An output never goes onto a task, agent, workflow or template note, never where another
task's output goes (two tasks would overwrite each other; only steps of runs of the same
workflow may share a `creates:`, and the writer puts the later beside the earlier), and
never into a hidden folder or a file that is not a note (`writer.output_path_problem`,
checked where paths are read).
"""

from __future__ import annotations

from vault_bmad.errors import Problem
from vault_bmad.model.definitions import TaskDef
from vault_bmad.vault.index import VaultIndex

NOT_WRITTEN_ONTO = ("task", "agent", "workflow", "template")


def output_problems(index: VaultIndex, tasks: dict[str, TaskDef]) -> list[Problem]:
    """A problem on each task note whose task (or workflow step) would write onto a note of
    one of those roles, or where another task writes too. Names compare as a case-blind
    file system does."""
    roles = {
        path.casefold(): (path, note.type)
        for path, note in index.notes.items()
        if note.type in NOT_WRITTEN_ONTO
    }
    writers: dict[str, list[TaskDef]] = {}
    problems: list[Problem] = []
    for task in tasks.values():
        if task.status == "skipped":  # a step the run leaves out writes nothing
            continue
        output = task.output or ""  # reading the note set it
        writers.setdefault(output.casefold(), []).append(task)
        if output.casefold() in roles:
            path, role = roles[output.casefold()]
            message = f"{_subject(task, output)} is the {role} note {path}; "
            problems.append(_problem(index, task, message + "write it to a note of its own"))
    for sharing in writers.values():
        if len(sharing) < 2 or all(task.step for task in sharing):
            continue  # runs of one workflow may create the same note: the next goes beside
        output = sharing[0].output or ""
        for task in sharing:
            others = ", ".join(_who(other) for other in sharing if other is not task)
            message = f"{_subject(task, output)} is also written by {others}; give each its own"
            problems.append(_problem(index, task, message))
    return problems


def _subject(task: TaskDef, output: str) -> str:
    return f"step '{task.step}' output {output}" if task.step else f"output {output}"


def _who(task: TaskDef) -> str:
    return f"{task.path} (step '{task.step}')" if task.step else task.path


def _problem(index: VaultIndex, task: TaskDef, message: str) -> Problem:
    note = index.get(task.path)
    key = "workflow" if task.step else "output"
    return Problem(task.path, note.property_lines.get(key) if note else None, message)
