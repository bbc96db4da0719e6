"""What every workflow step is read with: its agent, output, template and the files it uses,
each problem named with the workflow's file and the step's line."""

from __future__ import annotations

from dataclasses import dataclass
from posixpath import basename, splitext
from typing import Any

from vault_bmad.errors import Problem, VaultPathError, warning
from vault_bmad.model.agents import AgentRegistry
from vault_bmad.model.refs import describe, resolve_ref, template_ref
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.writer import output_note_path, output_path_problem

DEFAULT_DOCS_FOLDER = "Docs"  # where `creates: prd.md` goes
ANY_AGENT = "various"  # BMAD: whichever agent fits, chosen like any task without an agent


@dataclass(frozen=True)
class AgentChoice:
    """Who may do a step: one agent, any of some (`analyst/pm`), or any (both empty)."""

    agent: str | None = None
    alternatives: tuple[str, ...] = ()


class StepReader:
    """Reads one workflow's steps, collecting problems against its file and their lines."""

    def __init__(self, index: VaultIndex, agents: AgentRegistry, path: str) -> None:
        self.index, self.agents, self.path = index, agents, path
        self.problems: list[Problem] = []

    @property
    def failed(self) -> bool:
        return any(problem.is_error for problem in self.problems)

    def error(self, line: int | None, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))

    def warn(self, line: int | None, message: str) -> None:
        self.problems.append(warning(self.path, line, message))

    def agent_choice(self, step_id: str, ref: Any, line: int | None) -> AgentChoice | None:
        """`pm`, `[[Product Manager]]`, `analyst/pm` (either) or `various` (any that fits);
        None after an error when no agent named is known."""
        if isinstance(ref, str) and ref.strip().lower() == ANY_AGENT:
            return AgentChoice()
        whole = self.agents.find(ref, self.path)
        if whole is not None:
            return AgentChoice(whole.id)
        names = [part.strip() for part in ref.split("/")] if isinstance(ref, str) else []
        found = {name: self.agents.find(name, self.path) for name in names if name}
        known = tuple(dict.fromkeys(agent.id for agent in found.values() if agent))
        unknown = [name for name, agent in found.items() if agent is None]
        if len(found) < 2 or not known:
            agents = self.agents.names()
            self.error(line, f"step '{step_id}': unknown agent {describe(ref)} (known: {agents})")
            return None
        if unknown:
            self.warn(
                line,
                f"step '{step_id}': unknown agent {', '.join(unknown)} in {describe(ref)}; "
                f"only {', '.join(known)} may do it",
            )
        return AgentChoice(known[0]) if len(known) == 1 else AgentChoice(None, known)

    def output(self, step_id: str, creates: Any, line: int | None) -> str | None:
        """The note a step's `creates:` names: a bare file name goes under Docs/."""
        if not creates:
            return None
        text = str(creates)
        if "/" not in text:
            text = f"{DEFAULT_DOCS_FOLDER}/{text}"
        try:
            output = output_note_path(text)
        except VaultPathError as exc:
            self.error(line, f"step '{step_id}': creates {exc}")
            return None
        refused = output_path_problem(output)
        if refused is not None:
            self.error(line, f"step '{step_id}': creates {output}, which {refused}")
            return None
        return output

    def template(self, step_id: str, ref: Any, line: int | None) -> str | None:
        if not ref:
            return None
        path, why = template_ref(self.index, ref, self.path)
        if path is None:
            self.error(line, f"step '{step_id}': {why}")
        return path

    def used_notes(self, names: tuple[str, ...], choice: AgentChoice) -> tuple[str, ...]:
        """The vault's notes for BMAD `uses:` names: a file of the step's agent's own
        dependencies (`po-master-checklist` is checklists/po-master-checklist.md), or a
        note of that name. Names the vault does not hold are only mentioned to the agent."""
        agent_ids = (choice.agent,) if choice.agent else choice.alternatives
        files = [
            file
            for agent_id in agent_ids
            if agent_id in self.agents.by_id
            for files in self.agents.by_id[agent_id].dependencies.values()
            for file in files
        ]
        found = []
        for name in names:
            candidates = [f for f in files if splitext(basename(f))[0] == name] + [name]
            path = next(
                (p for c in candidates if (p := resolve_ref(self.index, c, self.path))), None
            )
            if path is not None:
                found.append(path)
        return tuple(dict.fromkeys(found))
