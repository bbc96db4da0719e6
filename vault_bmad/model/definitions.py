"""Validated agent, workflow and task definitions: the engine's input.

Each definition is a frozen pydantic model, built from a note by `model.validate`.
References between notes are already resolved: a task's `agent` is an agent id,
`depends_on` holds task ids, `context` holds vault-relative note paths.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vault_bmad.model.status import TaskStatus

RuntimeName = Literal["template", "llm", "command"]


class Priority(IntEnum):
    """The five queue levels; a lower value is served first."""

    CRITICAL = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3
    MINIMAL = 4

    @classmethod
    def parse(cls, value: object) -> Priority:
        """Accept a level name in any case, or an int 0-4."""
        if isinstance(value, Priority):
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 4:
            return cls(value)
        if isinstance(value, str) and value.strip().upper() in cls.__members__:
            return cls[value.strip().upper()]
        names = ", ".join(m.name.lower() for m in cls)
        raise ValueError(f"must be one of {names}, not {value!r}")


class Definition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Generation(Definition):
    """What an LLM is asked to generate, set on an agent or a task (the task's value wins);
    sent to the server under these names. Numbers must be numbers: a quoted "0.2" would
    be ignored by some servers, so it is refused here."""

    max_tokens: int | None = Field(default=None, ge=1, strict=True)
    max_completion_tokens: int | None = Field(default=None, ge=1, strict=True)  # OpenAI o-series
    temperature: float | None = Field(default=None, ge=0, le=2, strict=True)
    top_p: float | None = Field(default=None, gt=0, le=1, strict=True)
    stop: str | tuple[str, ...] | None = None
    seed: int | None = Field(default=None, strict=True)

    def generation(self) -> dict[str, object]:
        """The parameters this definition sets."""
        return {
            key: getattr(self, key) for key in GENERATION_KEYS if getattr(self, key) is not None
        }


GENERATION_KEYS: tuple[str, ...] = tuple(Generation.model_fields)


def generation_params(agent: Generation, task: Generation) -> tuple[tuple[str, object], ...]:
    """The agent's generation parameters, then the task's over them, sorted by name."""
    return tuple(sorted({**agent.generation(), **task.generation()}.items()))


class AgentDef(Generation):
    id: str
    name: str
    path: str  # the note (or BMAD file) it came from
    title: str = ""
    icon: str = ""
    expertise: tuple[str, ...] = ()
    runtime: RuntimeName = "template"
    model: str | None = None
    command: tuple[str, ...] = ()  # argv for runtime command; runs only if the user enables it
    weight: float = Field(default=1.0, gt=0)
    capacity: int = Field(default=1, ge=1, le=1000)
    persona: str = ""  # the system prompt for the llm runtime
    when_to_use: str = ""
    commands: tuple[str, ...] = ()
    dependencies: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    source: Literal["note", "bmad-v4", "skill"] = "note"


class Route(Definition):
    """One way on from a BMAD routing step, taken when the run's `conditions:` name it."""

    name: str
    agent: str | None = None  # agent id doing the route's work; None: nothing to do but read
    uses: tuple[str, ...] = ()
    context: tuple[str, ...] = ()  # vault-relative notes: the `uses` found in the vault
    notes: str = ""
    ends_run: bool = True  # BMAD routes end the workflow unless `continue: to_next_step`


class StepDef(Definition):
    id: str
    agent: str | None = None  # agent id; None (with no alternatives): any agent that fits
    alternatives: tuple[str, ...] = ()  # agent ids, any of which may do it (BMAD `analyst/pm`)
    guidance: bool = False  # no agent's work: shown in the run with its notes, never fails
    template: str | None = None  # vault-relative path of the template note
    creates: str | None = None  # vault-relative output path; None: the step's own note
    updates: str | None = None  # id of the earlier step whose output this one revises
    after: tuple[str, ...] = ()  # ids of the steps it starts after
    requires: tuple[str, ...] = ()  # ids of earlier steps whose outputs it reads
    optional: bool = False  # runs only when the run says `include_optional: true`
    condition: str | None = None  # runs only when the run's `conditions:` name it
    optional_steps: tuple[str, ...] = ()  # optional activities within the step
    uses: tuple[str, ...] = ()  # files of the agent's own (BMAD `uses:`), by name
    context: tuple[str, ...] = ()  # vault-relative notes it reads: the `uses` found in the vault
    repeats: str | None = None  # BMAD `repeats:` (for_each_epic): once per epic of the run
    routes: tuple[Route, ...] = ()  # a BMAD routing step's ways on
    notes: str = ""


class WorkflowDef(Definition):
    id: str
    name: str
    path: str
    steps: tuple[StepDef, ...]
    source: Literal["note", "bmad-v4"] = "note"

    def conditions(self) -> tuple[str, ...]:
        """Every word a run's `conditions:` may name: step conditions, optional activities
        and routes, in step order."""
        words = []
        for step in self.steps:
            words += [step.condition] if step.condition else []
            words += [*step.optional_steps, *(route.name for route in step.routes)]
        return tuple(dict.fromkeys(words))


class TaskDef(Generation):
    id: str
    path: str  # the task note; for a workflow step, the note that started the run
    title: str
    status: TaskStatus = "todo"
    agent: str | None = None  # agent id, or None to choose by expertise and load
    alternatives: tuple[str, ...] = ()  # with no agent: the agent ids it may go to (all: empty)
    priority: Priority = Priority.NORMAL
    criticality: int = Field(default=0, ge=0, le=10)
    depends_on: tuple[str, ...] = ()  # task ids
    context: tuple[str, ...] = ()  # vault-relative note paths handed to the agent
    template: str | None = None  # vault-relative path of the template note
    output: str | None = None  # vault-relative path in the vault; reading the note sets it
    complexity: float = Field(default=1.0, gt=0, le=100)
    timeout: float | None = Field(default=None, gt=0, le=86_400)  # None: the Settings default
    retries: int | None = Field(default=None, ge=0, le=20)  # None: the Settings default
    body: str = ""
    tags: tuple[str, ...] = ()
    workflow: str | None = None  # workflow id, for a task that starts or is a step of a run
    step: str | None = None  # step id within that workflow
    steps: tuple[str, ...] = ()  # for the task that starts a run: its step tasks' ids
    guidance: bool = False  # a step that is no agent's work: its output is its body
    reads: tuple[str, ...] | None = None  # task ids whose outputs it sees; None: its dependencies'
    updates: str | None = None  # task id of the earlier version its output revises
    skipped_because: str | None = None  # with status skipped: why the run leaves it out

    @field_validator("priority", mode="before")
    @classmethod
    def _priority(cls, value: object) -> Priority:
        return Priority.parse(value)

    @property
    def needs_agent(self) -> bool:
        """False for a run's own task and a guidance step, which the engine ends itself."""
        return not (self.steps or self.guidance)

    @property
    def run_id(self) -> str | None:
        """For a workflow step: the id of the task that started its run."""
        return self.id.rsplit("/", 1)[0] if self.step else None

    @property
    def kind(self) -> str:
        """What the predictor groups history by: the step, template, or first tag."""
        if self.step:
            return f"step:{self.step}"
        if self.template:
            return f"template:{self.template}"
        return f"tag:{self.tags[0]}" if self.tags else "task"
