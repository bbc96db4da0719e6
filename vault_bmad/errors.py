"""The project's exceptions, the problem record shown to users, and how attempts fail.

Every failed attempt is classified once, as a `Failure`: where the failure is seen (the
llm runtime reads HTTP answers, see `runtimes/llm_errors.py`), or by `classify` from the
exception a runtime raised. The engine acts on the `Failure` alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

Severity = Literal["error", "warning"]


def is_utf8(text: str) -> bool:
    """Whether `text` is whole Unicode: a file name that was not UTF-8 on disk comes to
    Python holding lone surrogates, which no UTF-8 output can take."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    """`text` with each byte that was not UTF-8 in a file name shown as U+FFFD."""
    if is_utf8(text):
        return text
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


@dataclass(frozen=True, order=True)
class Problem:
    """Something wrong with one note: shown by `check`, written into the note, served by the API.

    An error keeps what it names out of the run (`check` exits 1); a warning says how
    vault-bmad read something doubtful, and changes nothing else.
    """

    path: str  # vault-relative, with "/", as the file system gives it
    line: int | None
    message: str
    severity: Severity = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        path = printable(self.path)
        where = f"{path}:{self.line}" if self.line else path
        label = "" if self.is_error else "warning: "
        return f"{where}: {label}{self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "path": printable(self.path),
            "line": self.line,
            "message": self.message,
            "severity": self.severity,
        }


def warning(path: str, line: int | None, message: str) -> Problem:
    return Problem(path, line, message, "warning")


class VaultBmadError(Exception):
    """Base of every error vault-bmad raises on purpose."""


class ConfigError(VaultBmadError):
    """A setting is unknown, malformed, or not allowed where it was given."""


class StoreDamaged(VaultBmadError):
    """The state database cannot be read; the message names the file and how to recover."""


class VaultPathError(VaultBmadError):
    """A path would leave the vault."""


class SetupError(VaultBmadError):
    """A command cannot start (no vault, a port in use, no Dask scheduler); nothing was done."""


class RuntimeUnavailable(VaultBmadError):
    """A runtime could not do the work this time: its program failed, or it was not reached."""


class PermanentFailure(VaultBmadError):
    """A task attempt failed in a way that trying again cannot help."""


class RuntimeRefused(PermanentFailure):
    """The agent cannot have its runtime: unknown, turned off, or not allowed to run that."""


class TemplateRenderError(PermanentFailure):
    """A task's template failed to compile or render; retrying will not help."""

    def __init__(self, template: str, line: int | None, reason: str) -> None:
        super().__init__(template, line, reason)  # all three in args, so it pickles
        self.template = template
        self.line = line
        self.reason = reason

    def __str__(self) -> str:
        where = f"{self.template}, line {self.line}" if self.line else self.template
        return f"template {where}: {self.reason}"


class TaskTimeout(VaultBmadError):
    """A task attempt ran past its timeout."""


class DependencyCycle(VaultBmadError):
    """Tasks depend on each other in a loop, so none of them can ever start."""

    def __init__(self, cycle: tuple[str, ...]) -> None:
        self.cycle = cycle  # task ids, each depending on the next; the first repeated at the end
        super().__init__("dependency cycle: " + " → ".join(cycle))


class WriteConflict(VaultBmadError):
    """A note changed underneath a write-back in a way that cannot be merged."""


class FailureKind(StrEnum):
    """What trying again can do about a failed attempt."""

    DETERMINISTIC = "deterministic"  # the same attempt fails the same way: fail the task now
    TRANSIENT = "transient"  # it may pass: try again after a backoff


@dataclass(frozen=True)
class Failure:
    """How one attempt failed, decided once; the engine retries, fails and counts health by it.

    A transient failure counts toward the agent's health unless `elsewhere` says the fault
    lay outside the agent and its endpoint (a lost Dask worker, a note that could not be
    written). A deterministic one never does: it says something about the task, not the agent.
    """

    kind: FailureKind
    message: str
    endpoint: str | None = None  # the server the agent talks to (URL), when it is the one failing
    unreachable: bool = False  # nothing answered at `endpoint`: no connection at all
    retry_after_s: float | None = None  # the least wait the server asked for
    timed_out: bool = False
    elsewhere: bool = False

    @property
    def retryable(self) -> bool:
        return self.kind is FailureKind.TRANSIENT

    @property
    def counts_toward_health(self) -> bool:
        return self.kind is FailureKind.TRANSIENT and not self.elsewhere


class AttemptFailed(VaultBmadError):
    """An attempt failed as its `Failure` says; raised by runtimes that classify on the spot."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure)  # in args, so it pickles across Dask workers
        self.failure = failure

    def __str__(self) -> str:
        return self.failure.message


def classify(exc: BaseException) -> Failure:
    """The Failure behind any exception an attempt ended with.

    A runtime that knows better raises AttemptFailed. Otherwise: a timeout, a
    RuntimeUnavailable or an OSError may pass (an OSError is no fault of the agent's: a
    note that could not be written); any other error, ours or a bug in code, repeats
    when tried again, so it is deterministic.
    """
    if isinstance(exc, AttemptFailed):
        return exc.failure
    message = str(exc) or type(exc).__name__
    if isinstance(exc, PermanentFailure):
        return Failure(FailureKind.DETERMINISTIC, message)
    if isinstance(exc, TaskTimeout | TimeoutError):
        return Failure(FailureKind.TRANSIENT, message, timed_out=True)
    if isinstance(exc, RuntimeUnavailable):
        return Failure(FailureKind.TRANSIENT, message)
    if isinstance(exc, OSError):
        return Failure(FailureKind.TRANSIENT, message, elsewhere=True)
    if isinstance(exc, VaultBmadError):  # e.g. a WriteConflict: an output that cannot go
        return Failure(FailureKind.DETERMINISTIC, message)
    return Failure(FailureKind.DETERMINISTIC, f"{type(exc).__name__}: {message}")
