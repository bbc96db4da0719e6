"""The template runtime: renders a task through a sandboxed Jinja2 template, offline.

Templates see `persona`, `body`, `context` and `dependency_outputs` (lists of documents
with `.path` and `.text`), `params` (a dict) and `model`: only what the cache key hashes.
They render in the guarded sandbox (`sandbox.py`) inside worker processes
(`template_worker.py`, `worker_pool.py`) that the task's timeout stops and that run under
CPU-time and memory limits, so no template can hold up or exhaust vault-bmad itself.

A template may ask its user: `{% set a = ask_user(["Who reads it?", "By when?"]) %}`. The
first time, rendering stops there and the task waits for the answers; once they are in
the note, the template renders again from the top and `ask_user` returns them, a list in
the order of the questions. Each later `ask_user` call is a further round.
"""

from __future__ import annotations

import pickle
import weakref
from typing import Any

from vault_bmad.config import Settings
from vault_bmad.errors import RuntimeUnavailable, TaskTimeout, TemplateRenderError
from vault_bmad.runtimes.base import Ask, RunRequest, RuntimeOutput
from vault_bmad.runtimes.worker_pool import (
    NoWorkerFree,
    PoolClosed,
    WorkerDied,
    WorkerOverdue,
    WorkerPool,
)

DEFAULT_TEMPLATE_NAME = "(default template)"
DEFAULT_TEMPLATE = """\
{% if persona %}{{ persona }}

---

{% endif %}{{ body }}
{% for doc in context %}
## Context: {{ doc.path }}

{{ doc.text }}
{% endfor %}{% for doc in dependency_outputs %}
## Output of {{ doc.path }}

{{ doc.text }}
{% endfor %}"""
_MIB = 1024 * 1024


class TemplateRuntime:
    """Renders the task with the template it names, or the default one."""

    name = "template"

    def __init__(self, workers: int = 2, memory_mb: int = 512) -> None:
        self._pool = WorkerPool(workers, memory_mb * _MIB)
        self._finalizer = weakref.finalize(self, self._pool.close)  # no worker outlives us

    @classmethod
    def from_settings(cls, settings: Settings) -> TemplateRuntime:
        return cls(settings.template_workers, settings.template_memory_mb)

    def run(self, request: RunRequest) -> RuntimeOutput:
        """The request rendered (cut at its output cap), or what the template asks its user.
        Raises TemplateRenderError naming the template, or TaskTimeout when no worker came
        free in time."""
        answer = self._render(request)
        if "ask" in answer:
            ask = Ask(tuple(answer["ask"]))
            return RuntimeOutput(text="", runtime=self.name, model=request.model, ask=ask)
        truncated = bool(answer["truncated"])
        return RuntimeOutput(answer["text"], self.name, request.model, truncated=truncated)

    def render(self, request: RunRequest) -> str:
        """The request rendered to text, for a template that asks nothing."""
        output = self.run(request)
        if output.ask is not None:
            name = request.template_path or DEFAULT_TEMPLATE_NAME
            raise TemplateRenderError(name, None, "it asks its user, which only `run` can carry")
        return output.text

    def close(self) -> None:
        """Stop the worker processes; a render under way fails."""
        self._finalizer()

    def _render(self, request: RunRequest) -> dict[str, Any]:
        if request.template is None:
            text, name = DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_NAME
        else:
            text, name = request.template, request.template_path or "(unnamed template)"
        job = {
            "template": text,
            "variables": {
                "persona": request.persona,
                "body": request.body,
                "context": list(request.context),
                "dependency_outputs": list(request.dependency_outputs),
                "params": dict(request.params),
                "model": request.model,
            },
            "rounds": [(r.ask.questions, r.answers) for r in request.rounds],
            "may_ask": request.may_ask,
            "max_bytes": request.max_output_bytes,
            "timeout": request.timeout,
        }
        answer = self._ask(pickle.dumps(job), name, request.timeout)
        if "error" in answer:
            line, reason = answer["error"]
            raise TemplateRenderError(name, line, reason)
        return answer

    def _ask(self, job: bytes, name: str, timeout: float) -> dict[str, Any]:
        try:
            return self._pool.ask(job, timeout)
        except WorkerOverdue:
            reason = f"ran past the task's {timeout:g} s timeout and was stopped"
            raise TemplateRenderError(name, None, reason) from None
        except WorkerDied as exc:
            reason = f"its process {exc.how}: it took more CPU time or memory than a template may"
            raise TemplateRenderError(name, None, reason) from None
        except NoWorkerFree:
            raise TaskTimeout(
                f"no template process came free within the task's {timeout:g} s timeout"
            ) from None
        except PoolClosed:
            raise RuntimeUnavailable("the template runtime is shut down") from None
        except OSError as exc:
            raise RuntimeUnavailable(f"could not start a template process: {exc}") from None
