"""Workflow runs as graphs: which tasks make a run, and where each node is drawn. Pure.

A run is the task that starts it (`workflow` set, no `step`) and its step tasks, whose
ids are the run's id, "/", and the step id. The layout is layered, as Sugiyama's method
starts: a node's column is the longest chain of dependencies before it, and within a
column nodes are ordered by the mean row of what they depend on, so edges cross less.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vault_bmad.engine.snapshot import TaskView


@dataclass(frozen=True)
class Run:
    id: str  # the starting task's id
    title: str
    workflow: str
    status: str
    steps: tuple[str, ...]  # step task ids


@dataclass(frozen=True)
class Node:
    id: str
    label: str
    status: str
    agent: str | None
    column: int
    row: float
    outside: bool  # a dependency from outside the run


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str], ...]  # (dependency, dependent)


def workflow_runs(tasks: Sequence[TaskView]) -> tuple[Run, ...]:
    """Every run among the tasks, by id."""
    runs = []
    for task in tasks:
        if task.workflow and not task.step:
            prefix = task.id + "/"
            steps = tuple(t.id for t in tasks if t.step and t.id.startswith(prefix))
            runs.append(Run(task.id, task.title, task.workflow, task.status, steps))
    return tuple(sorted(runs, key=lambda run: run.id))


def run_graph(run: Run, tasks: Sequence[TaskView]) -> Graph:
    """The run's steps and their dependencies, with the dependencies from outside it."""
    by_id = {task.id: task for task in tasks}
    inside = [by_id[step] for step in run.steps if step in by_id]
    members = {task.id for task in inside}
    edges = sorted(
        {(dep, task.id) for task in inside for dep in task.depends_on if dep in by_id},
    )
    outside = sorted({dep for dep, _ in edges if dep not in members})
    ids = [task.id for task in inside] + outside
    placed = layered({node: [d for d, t in edges if t == node] for node in ids})
    nodes = []
    for node_id in ids:
        task = by_id[node_id]
        column, row = placed[node_id]
        label = task.step or task.title
        nodes.append(
            Node(node_id, label, task.status, task.agent, column, row, node_id not in members)
        )
    nodes.sort(key=lambda node: (node.column, node.row, node.id))
    return Graph(tuple(nodes), tuple(edges))


def layered(dependencies: Mapping[str, Sequence[str]]) -> dict[str, tuple[int, float]]:
    """(column, row) for each node of an acyclic graph given as node -> its dependencies.

    Dependencies that are not nodes are ignored; a cycle is cut where the walk closes it.
    """
    column: dict[str, int] = {}
    for node in dependencies:
        _place(node, dependencies, column)
    rows: dict[str, float] = {}
    for depth in range(max(column.values(), default=-1) + 1):
        layer = [node for node in dependencies if column[node] == depth]
        layer.sort(key=lambda node: (_mean_row(dependencies[node], rows), node))
        middle = (len(layer) - 1) / 2
        for position, node in enumerate(layer):
            rows[node] = position - middle
    return {node: (column[node], rows[node]) for node in dependencies}


def _place(start: str, dependencies: Mapping[str, Sequence[str]], column: dict[str, int]) -> None:
    """Give `start` and what it depends on their columns, dependencies first: a depth-first
    walk on a stack rather than recursion, so a long chain cannot overflow."""
    if start in column:
        return
    on_path = {start}
    stack = [(start, iter(dependencies.get(start, ())))]
    while stack:
        node, rest = stack[-1]
        for dep in rest:
            if dep in dependencies and dep not in column and dep not in on_path:
                on_path.add(dep)  # a dependency already on the path closes a cycle: skipped
                stack.append((dep, iter(dependencies.get(dep, ()))))
                break
        else:
            placed = [column[d] for d in dependencies.get(node, ()) if d in column]
            column[node] = 1 + max(placed, default=-1)
            on_path.discard(node)
            stack.pop()


def _mean_row(deps: Sequence[str], rows: Mapping[str, float]) -> float:
    placed = [rows[dep] for dep in deps if dep in rows]
    return sum(placed) / len(placed) if placed else 0.0
