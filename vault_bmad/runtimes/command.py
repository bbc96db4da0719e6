"""The command runtime: runs a program, only when the user's own config turns it on.

No shell: argv comes from the agent or task, the rendered request goes to stdin, and
stdout is the result. A timeout kills the program and everything it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping
from typing import IO, TYPE_CHECKING

from vault_bmad.errors import RuntimeRefused, RuntimeUnavailable, TaskTimeout
from vault_bmad.runtimes.base import RunRequest, RuntimeOutput
from vault_bmad.runtimes.command_rules import refusal

if TYPE_CHECKING:
    from vault_bmad.config import Settings
    from vault_bmad.runtimes.template import TemplateRuntime

_STDERR_TAIL_CHARS = 500
_READ_BLOCK = 1 << 16
_HIDDEN_ENV_PREFIX = "VAULT_BMAD_"  # keys and tokens stay out of the programs' environment


class CommandRuntime:
    """Runs `request.command` with the rendered request on stdin."""

    name = "command"

    def __init__(
        self,
        *,
        enabled: bool = False,
        allowlist: Iterable[str] = (),
        renderer: TemplateRuntime | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.enabled = enabled
        self.allowlist = frozenset(allowlist)
        if renderer is None:  # imported here: the runtime needs Jinja2 only once it runs
            from vault_bmad.runtimes.template import TemplateRuntime

            renderer = TemplateRuntime()
        self._renderer = renderer
        source = os.environ if environ is None else environ
        self._env = {k: v for k, v in source.items() if not k.startswith(_HIDDEN_ENV_PREFIX)}

    @classmethod
    def from_settings(
        cls, settings: Settings, *, renderer: TemplateRuntime | None = None
    ) -> CommandRuntime:
        return cls(
            enabled=settings.command_enabled,
            allowlist=settings.command_allowlist,
            renderer=renderer,
        )

    def run(self, request: RunRequest) -> RuntimeOutput:
        argv = self.check(request)
        rendered = self._renderer.run(request)
        if rendered.ask is not None:  # its template asks first; the program runs once answered
            return RuntimeOutput(text="", runtime=self.name, ask=rendered.ask)
        return RuntimeOutput(text=self._execute(argv, rendered.text, request), runtime=self.name)

    def check(self, request: RunRequest) -> tuple[str, ...]:
        """The argv to run, or RuntimeRefused saying why it may not run."""
        refused = refusal(request.command, f"task {request.task_id}", self.enabled, self.allowlist)
        if refused is not None:
            raise RuntimeRefused(refused)
        return request.command

    def _execute(self, argv: tuple[str, ...], stdin_text: str, request: RunRequest) -> str:
        """The program's stdout, read no further than one byte past the output cap (the rest
        is read and dropped, so the program never blocks on a full pipe)."""
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self._env,
                start_new_session=True,  # its own process group, so a timeout kills all of it
            )
        except OSError as exc:
            raise RuntimeRefused(
                f"the command runtime could not start {argv[0]!r}: {exc.strerror or exc}"
            ) from None
        assert process.stdin and process.stdout and process.stderr
        stdout = _Collector(process.stdout, keep=request.max_output_bytes + 1)
        stderr = _Collector(process.stderr, keep=_STDERR_TAIL_CHARS, tail=True)
        feeder = threading.Thread(target=_feed, args=(process.stdin, stdin_text.encode()))
        deadline = time.monotonic() + request.timeout
        with process:
            try:
                for thread in (feeder, stdout, stderr):
                    thread.start()
                process.wait(timeout=request.timeout)
                for thread in (feeder, stdout, stderr):
                    thread.join(max(0.0, deadline - time.monotonic()))
                    if thread.is_alive():  # a program it started still holds the pipe
                        raise subprocess.TimeoutExpired(argv, request.timeout)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                raise TaskTimeout(
                    f"{argv[0]!r} ran past its {request.timeout:g} s timeout and was killed"
                ) from None
            except BaseException:
                _kill_group(process)
                raise
        if process.returncode != 0:
            tail = stderr.text()[-_STDERR_TAIL_CHARS:].strip()
            raise RuntimeUnavailable(
                f"{argv[0]!r} exited with status {process.returncode}"
                + (f": {tail}" if tail else "")
            )
        return stdout.text()


class _Collector(threading.Thread):
    """Reads a pipe to its end, keeping its first (or, with `tail`, last) `keep` bytes."""

    def __init__(self, pipe: IO[bytes], *, keep: int, tail: bool = False) -> None:
        super().__init__(daemon=True)
        self._pipe, self._keep, self._tail = pipe, keep, tail
        self._data = bytearray()

    def run(self) -> None:
        with self._pipe:
            while block := self._pipe.read1(_READ_BLOCK):  # type: ignore[attr-defined]
                if self._tail:
                    self._data += block
                    del self._data[: -self._keep]
                elif len(self._data) < self._keep:
                    self._data += block[: self._keep - len(self._data)]

    def text(self) -> str:
        return self._data.decode(errors="replace")


def _feed(pipe: IO[bytes], data: bytes) -> None:
    """Write the program's stdin; a program that stops reading it is not an error here."""
    with contextlib.suppress(OSError), pipe:
        pipe.write(data)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):  # it had already gone
        os.killpg(process.pid, signal.SIGKILL)
