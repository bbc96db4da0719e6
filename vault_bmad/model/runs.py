"""A workflow run: the task that starts it, expanded into one task per step.

The starting task's note says how to run the workflow:
- `conditions: [user_wants_ai_generation]`: a step with a `condition:` runs only when
  its condition is named here; otherwise it ends `skipped`, with the reason. A routing
  step takes the route named here, and a route that does not `continue` skips the rest.
- `include_optional: true`: `optional: true` steps run (an optional step also runs when
  its condition is named), and a step's `optional_steps` are asked for; each of those
  may also be named in `conditions:` alone.
- `epics: [Payments, Search]` (or a count, `epics: 3`): a step that `repeats:` runs
  once per epic, one after another; without `epics:` it runs once.

Every step task gets its own output note: what it `creates`, else
`<output_folder>/<starting task>/<step id>.md`, so no step overwrites another or the run's
summary. A skipped step counts as ended for the steps after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from vault_bmad.model.definitions import Route, StepDef, TaskDef, WorkflowDef
from vault_bmad.vault.writer import step_output_path


@dataclass(frozen=True)
class RunOptions:
    """What the starting task's note asks of the run."""

    conditions: frozenset[str] = frozenset()
    include_optional: bool = False
    epics: tuple[str, ...] = ()


def skip_reason(step: StepDef, options: RunOptions) -> str | None:
    """Why the run leaves a step out, or None when it runs."""
    named = step.condition is not None and step.condition in options.conditions
    if step.optional and not (options.include_optional or named):
        also = f" or `conditions:` naming {step.condition}" if step.condition else ""
        return f"optional step: `include_optional: true`{also} runs it"
    if step.condition and not named and not step.optional and not step.routes:
        return f"its condition {step.condition} is not in the run's `conditions:`"
    return None


def chosen_route(step: StepDef, options: RunOptions) -> Route | None:
    return next((route for route in step.routes if route.name in options.conditions), None)


def expand_run(
    task: TaskDef, workflow: WorkflowDef, options: RunOptions, output_folder: str
) -> list[TaskDef]:
    """One task per step (per epic for a step that repeats), then the starting task,
    which ends when they all have; steps that create no note write under `output_folder`."""
    turn: dict[str, list[str]] = {}  # step id -> the tasks a step after it waits for
    versions: dict[str, list[str]] = {}  # step id -> the tasks whose outputs stand for it
    ended_by: str | None = None  # a route taken that ends the workflow
    tasks: list[TaskDef] = []
    for step in workflow.steps:
        reason = ended_by or skip_reason(step, options)
        route = None if reason else chosen_route(step, options)
        epics = options.epics if step.repeats and options.epics and not reason else ("",)
        after = list(dict.fromkeys(i for s in step.after for i in turn.get(s, ())))
        turn[step.id] = after  # a skipped step ends in its turn: after these
        reads = [i for s in step.requires for i in versions.get(s, ())]
        earlier = versions.get(step.updates or "", [])
        updates = earlier[-1] if earlier else None
        instances: list[str] = []
        for number, epic in enumerate(epics, start=1):
            step_id = f"{step.id}-{number}" if epic else step.id
            task_id = f"{task.id}/{step_id}"
            guidance = step.guidance and not (route and route.agent)
            request = [] if guidance else [task.body]  # guidance is read by people, not agents
            body = [*request, step.notes, *_activities(step, options)]
            body += [f"Epic {number} of {len(epics)}: {epic}"] if epic else []
            body += _routes_text(step, route)
            tasks.append(
                task.model_copy(
                    update={
                        "id": task_id,
                        "title": f"{task.title}: {step_id}",
                        "agent": route.agent if route and route.agent else step.agent,
                        "alternatives": () if route and route.agent else step.alternatives,
                        "guidance": guidance,
                        "template": step.template or task.template,
                        "output": _numbered(step.creates, number if epic else 0)
                        or step_output_path(task.path, step_id, output_folder),
                        "depends_on": tuple(dict.fromkeys((*task.depends_on, *after))),
                        "reads": tuple(dict.fromkeys((*task.depends_on, *reads))),
                        "context": tuple(
                            dict.fromkeys(
                                (*task.context, *step.context, *(route.context if route else ()))
                            )
                        ),
                        "updates": updates,
                        "body": "\n\n".join(part for part in body if part),
                        "workflow": workflow.id,
                        "step": step_id,
                        **({"status": "skipped", "skipped_because": reason} if reason else {}),
                    }
                )
            )
            instances.append(task_id)
            if not reason:
                after = turn[step.id] = [task_id]  # the next epic's turn comes after this one's
        # a revision the run skips leaves the version it would have revised
        versions[step.id] = (earlier if step.updates else []) if reason else instances
        if route and route.ends_run:
            ended_by = f"route {route.name} of step {step.id} ends the workflow"
    step_ids = tuple(task.id for task in tasks)
    run = task.model_copy(
        update={
            "workflow": workflow.id,
            "steps": step_ids,
            "depends_on": tuple(dict.fromkeys((*task.depends_on, *step_ids))),
        }
    )
    return [*tasks, run]


def _activities(step: StepDef, options: RunOptions) -> list[str]:
    """The step's optional activities: asked for, or named as left out."""
    chosen = [a for a in step.optional_steps if options.include_optional or a in options.conditions]
    left = [a for a in step.optional_steps if a not in chosen]
    lines = [f"Also do these optional activities: {', '.join(chosen)}."] if chosen else []
    if left:
        asks = "`include_optional: true` asks for them"
        lines.append(f"Optional activities left out ({asks}): {', '.join(left)}.")
    return lines


def _routes_text(step: StepDef, taken: Route | None) -> list[str]:
    """What a routing step says: the route taken, or every route to choose from."""
    if taken is not None:
        uses = f" using {', '.join(taken.uses)}" if taken.uses else ""
        return [f"Route taken: {taken.name}{uses}. {taken.notes}".strip()]
    if not step.routes:
        return []
    lines = ["Routes (name one in the starting task's `conditions:` to take it):"]
    for route in step.routes:
        who = f" ({route.agent}{', uses ' + ', '.join(route.uses) if route.uses else ''})"
        lines.append(f"- {route.name}{who if route.agent else ''}: {route.notes}")
    return ["\n".join(lines)]


def _numbered(path: str | None, number: int) -> str | None:
    """The note of one epic's turn at a repeated step: Docs/story.md gives Docs/story-2.md."""
    if path is None or not number:
        return path
    stem, dot, suffix = path.rpartition(".")
    return f"{stem}-{number}.{suffix}" if dot else f"{path}-{number}"
