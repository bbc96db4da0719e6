"""A template worker: a long-lived process that renders templates in the guarded sandbox.

`worker_pool.WorkerPool` starts it as `python -P -s -m vault_bmad.runtimes.template_worker
MEMORY_BYTES` and talks to it over stdin and stdout in frames: a 4-byte big-endian length,
then the payload. A job is a pickle from the parent, which the worker trusts; an answer is
JSON, so nothing a template does can make the parent run code.

The process bounds what the sandbox cannot: its address space is limited to MEMORY_BYTES
for its whole life, and before each job its CPU-time limit is set to what it has used plus
the job's timeout and a second, so a render the parent fails to stop still ends (SIGXCPU).
Output stops at the job's byte cap and is marked truncated. A template that calls
`ask_user` (`AskUser`) stops there: the answer holds its questions instead of text.
"""

from __future__ import annotations

import contextlib
import json
import math
import pickle
import resource
import signal
import struct
import sys
import traceback
from functools import lru_cache
from typing import IO, Any

from jinja2 import Template, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError

from vault_bmad.runtimes.base import cap_text, checked_questions
from vault_bmad.runtimes.sandbox import GuardedSandbox

FRAME_HEADER = struct.Struct(">I")
CPU_GRACE_S = 1  # beyond the job's timeout, before the kernel stops a render
_COMPILED_KEPT = 256  # compiling costs far more than rendering, and templates repeat


def read_frame(stream: IO[bytes]) -> bytes | None:
    """The next frame's payload, or None at the end of the stream."""
    header = stream.read(FRAME_HEADER.size)
    if len(header) < FRAME_HEADER.size:
        return None
    (size,) = FRAME_HEADER.unpack(header)
    payload = stream.read(size)
    return payload if len(payload) == size else None


def frame(payload: bytes) -> bytes:
    return FRAME_HEADER.pack(len(payload)) + payload


@lru_cache(maxsize=8)
def sandbox(max_chars: int) -> GuardedSandbox:
    return GuardedSandbox(max_chars)


@lru_cache(maxsize=_COMPILED_KEPT)
def compiled(max_chars: int, text: str) -> Template:
    return sandbox(max_chars).from_string(text)


class Asking(Exception):
    """Raised by `ask_user` inside a template: rendering stops, and the task asks."""

    def __init__(self, questions: tuple[str, ...]) -> None:
        super().__init__(questions)
        self.questions = questions


class AskUser:
    """`ask_user` as templates see it: the answers of the rounds the job carries, in order,
    then it asks (a round whose questions the template no longer asks is asked anew)."""

    def __init__(self, rounds: list[tuple[tuple[str, ...], tuple[str, ...]]], may_ask: bool):
        self._rounds, self._may_ask = list(rounds), may_ask

    def __call__(self, questions: object) -> list[str]:
        try:
            asked = checked_questions(questions, "ask_user")
        except ValueError as exc:
            raise TypeError(str(exc)) from None
        if self._rounds and tuple(self._rounds[0][0]) == asked:
            return list(self._rounds.pop(0)[1])
        if not self._may_ask:
            raise TypeError("ask_user: no more questions may be asked (max_question_rounds)")
        raise Asking(asked)


def render(job: dict[str, Any]) -> dict[str, Any]:
    """Render one job: {"template", "variables", "rounds", "may_ask", "max_bytes"} ->
    {"text", "truncated"}, {"ask": [questions]}, or {"error": [line, reason]} (with
    "restart" when the process should not go on)."""
    max_bytes: int = job["max_bytes"]
    try:
        template = compiled(max_bytes, job["template"])
    except TemplateSyntaxError as exc:
        return {"error": [exc.lineno, exc.message or "syntax error"]}
    pieces, size = [], 0
    ask_user = AskUser(job.get("rounds", []), bool(job.get("may_ask")))
    try:
        for piece in template.generate(**job["variables"], ask_user=ask_user):
            pieces.append(piece)
            size += len(piece)
            if size > max_bytes:  # more characters than bytes allowed: over the cap for sure
                break
    except Asking as asking:
        return {"ask": list(asking.questions)}
    except MemoryError:
        pieces.clear()
        reason = "needed more memory than a template may use (template_memory_mb)"
        return {"error": [None, reason], "restart": True}
    except SecurityError as exc:
        return {"error": [_template_line(exc), f"the sandbox refused it: {exc}"]}
    except UndefinedError as exc:
        return {"error": [_template_line(exc), str(exc)]}
    except Exception as exc:  # any error raised inside a user's template is theirs to fix
        return {"error": [_template_line(exc), f"{type(exc).__name__}: {exc}"]}
    text, truncated = cap_text("".join(pieces), max_bytes)
    return {"text": text, "truncated": truncated}


def _template_line(exc: BaseException) -> int | None:
    """The template line an error came from, from the frames Jinja2 rewrites for templates."""
    lines = [
        frame.lineno
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename == "<template>"
    ]
    return lines[-1] if lines else None


def limit_cpu(seconds: float) -> None:
    """Let the process use `seconds` more CPU time (and the grace) from now on."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + seconds) + CPU_GRACE_S
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def limit_memory(size: int) -> None:
    """Limit the address space, where the system allows it (macOS does not enforce it)."""
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (size, size))


def serve(jobs: IO[bytes], answers: IO[bytes]) -> None:
    """Answer jobs until the parent closes the pipe (or a job asks for a fresh process)."""
    while (payload := read_frame(jobs)) is not None:
        job = pickle.loads(payload)
        limit_cpu(job["timeout"])
        answer = render(job)
        answers.write(frame(json.dumps(answer, ensure_ascii=False).encode("utf-8")))
        answers.flush()
        if answer.get("restart"):
            return


def main() -> None:
    # A terminal's Ctrl-C reaches the whole process group; stopping is the parent's call,
    # which it makes by closing the pipe (or, past a deadline, by SIGKILL).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_memory(int(sys.argv[1]))
    jobs, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers goes down the answer pipe
    serve(jobs, answers)


if __name__ == "__main__":
    main()
