"""The project's exceptions and the problem record shown to users."""

from __future__ import annotations

from dataclasses import dataclass
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


class RuntimeUnavailable(VaultBmadError):
    """A runtime cannot do the work: it is off, unreachable, or answered with an error."""


class PermanentFailure(VaultBmadError):
    """A task attempt failed in a way that trying again cannot help."""


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
