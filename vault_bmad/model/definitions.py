"""Validated agent, workflow and task definitions: the engine's input.

Each definition is a frozen pydantic model, built from a note by `model.validate`.
References between notes are already resolved: a task's `agent` is an agent id,
`depends_on` holds task ids, `context` holds vault-relative note paths.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vault_bmad.errors import Problem
from vault_bmad.model.status import TaskStatus

RuntimeName = Literal["template", "llm", "command", "python"]


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


class AgentDef(Definition):
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


class StepDef(Definition):
    id: str
    agent: str  # agent id
    template: str | None = None  # vault-relative path of the template note
    creates: str | None = None  # vault-relative output path
    requires: tuple[str, ...] = ()  # ids of earlier steps
    optional: bool = False
    condition: str | None = None
    notes: str = ""


class WorkflowDef(Definition):
    id: str
    name: str
    path: str
    steps: tuple[StepDef, ...]
    source: Literal["note", "bmad-v4"] = "note"


class TaskDef(Definition):
    id: str
    path: str  # the task note; for a workflow step, the note that started the run
    title: str
    status: TaskStatus = "todo"
    agent: str | None = None  # agent id, or None to choose by expertise and load
    priority: Priority = Priority.NORMAL
    criticality: int = Field(default=0, ge=0, le=10)
    depends_on: tuple[str, ...] = ()  # task ids
    context: tuple[str, ...] = ()  # vault-relative note paths handed to the agent
    template: str | None = None  # vault-relative path of the template note
    output: str | None = None  # vault-relative path, already confined to the vault
    complexity: float = Field(default=1.0, gt=0, le=100)
    timeout: float | None = Field(default=None, gt=0, le=86_400)  # None: the Settings default
    retries: int | None = Field(default=None, ge=0, le=20)  # None: the Settings default
    body: str = ""
    tags: tuple[str, ...] = ()
    workflow: str | None = None  # workflow id, for a task that starts or is a step of a run
    step: str | None = None  # step id within that workflow
    steps: tuple[str, ...] = ()  # for the task that starts a run: its step tasks' ids

    @field_validator("priority", mode="before")
    @classmethod
    def _priority(cls, value: object) -> Priority:
        return Priority.parse(value)

    @property
    def kind(self) -> str:
        """What the predictor groups history by: the step, template, or first tag."""
        if self.step:
            return f"step:{self.step}"
        if self.template:
            return f"template:{self.template}"
        return f"tag:{self.tags[0]}" if self.tags else "task"


class Definitions(BaseModel):
    """Everything the vault defines, plus the problems that kept notes out."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    agents: dict[str, AgentDef] = Field(default_factory=dict)
    workflows: dict[str, WorkflowDef] = Field(default_factory=dict)
    tasks: dict[str, TaskDef] = Field(default_factory=dict)
    problems: tuple[Problem, ...] = ()  # sorted by path and line
