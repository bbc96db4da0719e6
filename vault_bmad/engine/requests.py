"""Build a runtime's request from a task: persona, body, context notes, dependency outputs.

Everything a runtime sees is read here, in the orchestrator's thread, so the request is
plain data: it pickles for remote workers and hashes into a content-addressed cache key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from vault_bmad.config import Settings
from vault_bmad.model.definitions import AgentDef, TaskDef, generation_params
from vault_bmad.runtimes.base import ContextDoc, RunRequest
from vault_bmad.vault.index import VaultIndex

ReadNoteBody = Callable[[str], str | None]


def build_request(
    task: TaskDef,
    agent: AgentDef,
    index: VaultIndex,
    settings: Settings,
    dependency_outputs: Mapping[str, str],
    read_body: ReadNoteBody,
) -> RunRequest:
    """The request for one attempt of `task` by `agent`.

    `dependency_outputs` maps a dependency's task id to its output note's path, and
    `read_body` reads a note's body (without frontmatter) fresh from the vault.
    """
    return RunRequest(
        task_id=task.id,
        title=task.title,
        runtime=agent.runtime,
        agent_id=agent.id,
        persona=agent.persona,
        body=task.body,
        context=tuple(_docs(task.context, read_body)),
        dependency_outputs=tuple(
            _docs(
                [dependency_outputs[d] for d in task.depends_on if d in dependency_outputs],
                read_body,
            )
        ),
        template=_template_text(task, index),
        template_path=task.template,
        model=(agent.model or settings.llm_model) if agent.runtime == "llm" else agent.model,
        params=generation_params(agent, task) if agent.runtime == "llm" else (),
        timeout=task.timeout or settings.task_timeout_s,
        command=agent.command,
    )


def _docs(paths: list[str] | tuple[str, ...], read_body: ReadNoteBody) -> list[ContextDoc]:
    docs = []
    for path in paths:
        text = read_body(path)
        if text is not None:
            docs.append(ContextDoc(path, text))
    return docs


def _template_text(task: TaskDef, index: VaultIndex) -> str | None:
    if task.template is None:
        return None
    note = index.get(task.template)
    return note.body if note is not None else None
