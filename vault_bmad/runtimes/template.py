"""The template runtime: renders a task through a sandboxed Jinja2 template, offline.

Templates see `persona`, `body`, `context` and `dependency_outputs` (lists of documents
with `.path` and `.text`), `params` (a dict) and `model`: only what the cache key hashes.

A template may ask its user: `{% set a = ask_user(["Who reads it?", "By when?"]) %}`. The
first time, rendering stops there and the task waits for the answers; once they are in
the note, the template renders again from the top and `ask_user` returns them, a list in
the order of the questions. Each later `ask_user` call is a further round.
"""

from __future__ import annotations

import traceback
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from vault_bmad.cache.domain import named_cache
from vault_bmad.errors import TemplateRenderError
from vault_bmad.runtimes.base import Ask, RunRequest, RuntimeOutput, checked_questions

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

MAX_REPEATED_LENGTH = 1_000_000  # longest string or list `*` may build
MAX_INTEGER_BITS = 100_000  # largest integer `*` or `**` may build (about 30,000 digits)
_COMPILED_TEMPLATES_KEPT = 256


class GuardedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox, which also refuses `*` and `**` that would exhaust memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if _is_int(left) and _is_int(right):
            bits = abs(left).bit_length()
            bits = bits + abs(right).bit_length() if operator == "*" else bits * abs(right)
            if bits > MAX_INTEGER_BITS:
                raise SecurityError(f"integers above {MAX_INTEGER_BITS} bits are not allowed")
        elif operator == "*":
            for sequence, count in ((left, right), (right, left)):
                repeats = isinstance(sequence, str | list | tuple) and _is_int(count)
                if repeats and len(sequence) * count > MAX_REPEATED_LENGTH:
                    raise SecurityError(
                        f"repeating a sequence past {MAX_REPEATED_LENGTH} items is not allowed"
                    )
        return super().call_binop(context, operator, left, right)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def new_sandbox() -> GuardedSandbox:
    """The environment templates render in: sandboxed, strict about undefined names."""
    env = GuardedSandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.globals.pop("lipsum", None)  # generates text of any size; no use in a prompt
    return env


class TemplateRuntime:
    """Renders the task with the template it names, or the default one."""

    name = "template"

    def __init__(self) -> None:
        self._env = new_sandbox()
        # Compiling costs far more than rendering; templates repeat across tasks. Keyed by
        # the template's text, so an edited template compiles afresh.
        self._compiled = named_cache("workflow-templates", _COMPILED_TEMPLATES_KEPT)

    def _compile(self, text: str) -> Template:
        template = self._compiled.get(text)
        if not isinstance(template, Template):
            template = self._env.from_string(text)
            self._compiled.set(text, template)
        return template

    def run(self, request: RunRequest) -> RuntimeOutput:
        try:
            text = self.render(request)
        except _Asking as asking:
            return RuntimeOutput(text="", runtime=self.name, model=request.model, ask=asking.ask)
        return RuntimeOutput(text=text, runtime=self.name, model=request.model)

    def render(self, request: RunRequest) -> str:
        """The request rendered to text. Raises TemplateRenderError naming the template, or
        _Asking when the template asks its user (`run` turns that into its `ask`)."""
        if request.template is None:
            text, name = DEFAULT_TEMPLATE, DEFAULT_TEMPLATE_NAME
        else:
            text, name = request.template, request.template_path or "(unnamed template)"
        try:
            template = self._compile(text)
        except TemplateSyntaxError as exc:
            raise TemplateRenderError(name, exc.lineno, exc.message or "syntax error") from None
        try:
            return template.render(
                persona=request.persona,
                body=request.body,
                context=list(request.context),
                dependency_outputs=list(request.dependency_outputs),
                params=dict(request.params),
                model=request.model,
                ask_user=_Questions(request),
            )
        except _Asking:
            raise
        except SecurityError as exc:
            reason = f"the sandbox refused it: {exc}"
            raise TemplateRenderError(name, _template_line(exc), reason) from None
        except UndefinedError as exc:
            raise TemplateRenderError(name, _template_line(exc), str(exc)) from None
        except Exception as exc:  # any error raised inside a user's template is theirs to fix
            reason = f"{type(exc).__name__}: {exc}"
            raise TemplateRenderError(name, _template_line(exc), reason) from None


class _Asking(Exception):
    """Raised by `ask_user` inside a template: rendering stops, and the task asks."""

    def __init__(self, ask: Ask) -> None:
        super().__init__(ask)
        self.ask = ask


class _Questions:
    """`ask_user` as templates see it: the answers of the rounds the request carries, in
    order, then it asks."""

    def __init__(self, request: RunRequest) -> None:
        self._rounds = list(request.rounds)
        self._may_ask = request.may_ask

    def __call__(self, questions: object) -> list[str]:
        try:
            asked = checked_questions(questions, "ask_user")
        except ValueError as exc:
            raise TypeError(str(exc)) from None
        if self._rounds and self._rounds[0].ask.questions == asked:
            return list(self._rounds.pop(0).answers)
        if not self._may_ask:
            raise TypeError("ask_user: no more questions may be asked (max_question_rounds)")
        raise _Asking(Ask(asked))


def _template_line(exc: BaseException) -> int | None:
    """The template line an error came from, from the frames Jinja2 rewrites for templates."""
    lines = [
        frame.lineno
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename == "<template>"
    ]
    return lines[-1] if lines else None
