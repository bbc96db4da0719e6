"""Build a runtime's request from a task: persona, body, context notes, dependency outputs.

Everything a runtime sees is read here, in the orchestrator's thread, so the request is
plain data: it pickles for remote workers and hashes into a content-addressed cache key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from vault_bmad.cache.domain import file_key, named_cache
from vault_bmad.config import Settings
from vault_bmad.errors import VaultBmadError
from vault_bmad.model.definitions import AgentDef, TaskDef, generation_params
from vault_bmad.runtimes.base import ContextDoc, Round, RunRequest
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.notes import parse_note
from vault_bmad.vault.paths import resolve_in_vault

ReadNoteBody = Callable[[str], str | None]

PARSED_NOTES_KEPT = 1_000  # context and dependency notes, by (path, mtime, size)


class NoteBodies:
    """Reads notes' bodies as they are on disk now, so edits since the index was built
    count; parsed notes are cached by (path, mtime, size)."""

    def __init__(self, root: Path, capacity: int = PARSED_NOTES_KEPT) -> None:
        self.root = root
        self._parsed = named_cache("parsed-notes", capacity)

    def read(self, rel_path: str) -> str | None:
        """The body of the note at `rel_path`, or None if it cannot be read."""
        try:
            path = resolve_in_vault(self.root, rel_path)
            key = file_key(path)
            body = self._parsed.get(key)
            if not isinstance(body, str):
                body = parse_note(rel_path, path.read_text(encoding="utf-8-sig")).body
                self._parsed.set(key, body)
        except (OSError, VaultBmadError, UnicodeDecodeError):
            return None
        return body


def build_request(
    task: TaskDef,
    agent: AgentDef,
    index: VaultIndex,
    settings: Settings,
    dependency_outputs: Mapping[str, str],
    read_body: ReadNoteBody,
    rounds: tuple[Round, ...] = (),
) -> RunRequest:
    """The request for one attempt of `task` by `agent`.

    `dependency_outputs` maps a dependency's task id to its output note's path, and
    `read_body` reads a note's body (without frontmatter) fresh from the vault. `rounds` is
    the conversation so far, when the agent asked its user and has the answers.
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
                [dependency_outputs[d] for d in _reads(task) if d in dependency_outputs],
                read_body,
            )
        ),
        template=_template_text(task, index),
        template_path=task.template,
        model=(agent.model or settings.llm_model) if agent.runtime == "llm" else agent.model,
        params=generation_params(agent, task) if agent.runtime == "llm" else (),
        timeout=task.timeout or settings.task_timeout_s,
        max_output_bytes=settings.max_output_bytes,
        command=agent.command,
        rounds=rounds,
        may_ask=len(rounds) < settings.max_question_rounds,
    )


def _reads(task: TaskDef) -> tuple[str, ...]:
    """The tasks whose outputs the agent sees: what the task reads, else its dependencies."""
    return task.depends_on if task.reads is None else task.reads


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
