"""Progress on the terminal: for `run`, a bar on a TTY and plain lines otherwise; for
`serve`, a line per task move."""

from __future__ import annotations

import sys
from typing import Any, TextIO

import click

from vault_bmad.metrics.outcomes import AGENT_EVENTS, Event
from vault_bmad.model.status import NEEDS_INPUT, OUTCOMES


class RunProgress:
    """Receives the orchestrator's events and shows them to a person."""

    def __init__(self, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self._bar: Any = None

    def start(self, total: int) -> None:
        if self.enabled and self.tty and total:
            self._bar = click.progressbar(
                length=total, label="running", file=self.stream, show_pos=True, width=30
            )
            self._bar.__enter__()
        elif self.enabled:
            click.echo(f"{total} task{'' if total == 1 else 's'} to run", file=self.stream)

    def event(self, event: Event) -> None:
        if not self.enabled:
            return
        if event.kind in AGENT_EVENTS:  # which agent is out, why, until when: always shown
            line = f"{event.kind:>8} agent {event.agent}: {event.detail}"
            click.echo(("\n" if self._bar is not None else "") + line, file=self.stream)
            return
        if self._bar is not None:
            if event.kind in (*OUTCOMES, NEEDS_INPUT):
                self._bar.label = f"{event.kind}: {event.task_id}"[:50]
                self._bar.update(0 if event.kind == NEEDS_INPUT else 1)  # not ended
            return
        if event.kind in (*OUTCOMES, "started", "retry", NEEDS_INPUT, "answered"):
            took = f" in {event.seconds:.2f} s" if event.seconds is not None else ""
            detail = f" ({event.detail})" if event.detail else ""
            click.echo(f"{event.kind:>8} {event.task_id}{took}{detail}", file=self.stream)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
