"""The records every runtime shares, the output cap, the Runtime interface, and the factory
of runtimes."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from vault_bmad.config import MAX_OUTPUT_BYTES

if TYPE_CHECKING:
    from vault_bmad.config import Settings


@dataclass(frozen=True)
class ContextDoc:
    """A note handed to a runtime: a linked context note or a dependency's output."""

    path: str  # vault-relative, with "/"
    text: str


MAX_QUESTIONS = 20  # questions one ask may hold
MAX_QUESTION_CHARS = 2_000  # length of one question


@dataclass(frozen=True)
class Ask:
    """An agent asking its user: the attempt ends with these questions, not with a result."""

    questions: tuple[str, ...]
    call: str = ""  # how the runtime asked, replayed when it resumes (llm: the assistant message)


@dataclass(frozen=True)
class Round:
    """One round of the conversation so far: what the agent asked and the user's answers."""

    ask: Ask
    answers: tuple[str, ...]  # one per question, in order


def checked_questions(value: object, where: str) -> tuple[str, ...]:
    """The questions of an `ask_user` call: a non-empty list of non-empty strings (a single
    string is one question). Raises ValueError saying what is wrong, after `where`."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(f"{where}: questions must be a non-empty list of strings, not {value!r}")
    if len(items) > MAX_QUESTIONS:
        raise ValueError(f"{where}: {len(items)} questions; at most {MAX_QUESTIONS} at once")
    questions = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"{where}: question {number} is not text: {item!r}")
        if len(item) > MAX_QUESTION_CHARS:
            raise ValueError(f"{where}: question {number} is over {MAX_QUESTION_CHARS} characters")
        questions.append(" ".join(item.split()))
    return tuple(questions)


@dataclass(frozen=True)
class RunRequest:
    """Everything a runtime needs to do one task attempt, already read from the vault."""

    task_id: str
    title: str
    runtime: str
    agent_id: str
    persona: str
    body: str
    context: tuple[ContextDoc, ...]
    dependency_outputs: tuple[ContextDoc, ...]
    template: str | None  # the template's text; None renders the default template
    template_path: str | None  # where the template came from, for error messages
    model: str | None
    params: tuple[tuple[str, object], ...]
    timeout: float  # seconds
    command: tuple[str, ...] = ()  # argv for the command runtime
    max_output_bytes: int = MAX_OUTPUT_BYTES  # longer output is cut (see cap_output)
    rounds: tuple[Round, ...] = ()  # the conversation so far, when it resumes after answers
    may_ask: bool = False  # whether the agent may ask its user (another round is allowed)

    def cache_parts(self) -> dict[str, object]:
        """Exactly what determines the result, for a content-addressed cache key.

        Ids, title, paths of templates and the timeout are left out: two tasks asking the
        same thing of the same runtime share a result. Runtimes see nothing else. A request
        that carries answers (`rounds`) never goes through the cache.
        """
        return {
            "runtime": self.runtime,
            "model": self.model,
            "params": [[key, value] for key, value in self.params],
            "persona": self.persona,
            "body": self.body,
            "template": self.template,
            "context": [[doc.path, doc.text] for doc in self.context],
            "dependency_outputs": [[doc.path, doc.text] for doc in self.dependency_outputs],
            "command": list(self.command),
            "may_ask": self.may_ask,
        }


@dataclass(frozen=True)
class RuntimeOutput:
    """What a runtime produced, with token usage when the runtime reports it."""

    text: str
    runtime: str
    model: str | None = None
    tokens_in: int | None = None  # prompt tokens
    tokens_out: int | None = None  # completion tokens
    truncated: bool = False  # cut off: at its length limit (finish_reason "length"), or the cap
    calls: int = 1  # requests it took: more when Dask ran it again after losing a worker
    ask: Ask | None = None  # the agent asked its user instead of answering (`text` is "")


def cap_text(text: str, max_bytes: int) -> tuple[str, bool]:
    """`text` cut to at most `max_bytes` of UTF-8, at a character boundary, and whether it
    was cut: the output cap, the one rule for every runtime."""
    if len(text) * 4 <= max_bytes:  # no character takes more than 4 bytes
        return text, False
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return text, False
    return data[:max_bytes].decode("utf-8", "ignore"), True


def cap_output(output: RuntimeOutput, max_bytes: int) -> RuntimeOutput:
    """The output with its text within the cap, marked truncated when it was cut."""
    text, cut = cap_text(output.text, max_bytes)
    return replace(output, text=text, truncated=True) if cut else output


class Runtime(Protocol):
    """Does one task attempt. Raises AttemptFailed, or an exception `errors.classify` reads:
    RuntimeUnavailable, TaskTimeout, a PermanentFailure such as TemplateRenderError."""

    name: str

    def run(self, request: RunRequest) -> RuntimeOutput: ...


def build_runtimes(settings: Settings) -> dict[str, Runtime]:
    """The template, llm and command runtimes, configured from settings, by name."""
    # Imported here: each runtime module imports this one for the records above.
    from vault_bmad.runtimes.command import CommandRuntime
    from vault_bmad.runtimes.llm import LlmRuntime
    from vault_bmad.runtimes.template import TemplateRuntime

    template = TemplateRuntime.from_settings(settings)
    runtimes: list[Runtime] = [
        template,
        LlmRuntime.from_settings(settings),
        CommandRuntime.from_settings(settings, renderer=template),
    ]
    return {runtime.name: runtime for runtime in runtimes}
