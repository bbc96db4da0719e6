"""The template runtime: rendering, strictness, and the sandbox."""

from __future__ import annotations

import dataclasses
import pickle

import pytest

from vault_bmad.errors import TemplateRenderError
from vault_bmad.runtimes.base import ContextDoc, RunRequest
from vault_bmad.runtimes.template import TemplateRuntime

BASE = RunRequest(
    task_id="design-api",
    title="Design the API",
    runtime="template",
    agent_id="architect",
    persona="You are Winston, a pragmatic architect.",
    body="Design the public API of the billing service.",
    context=(ContextDoc("Docs/Project Brief.md", "Billing for small shops."),),
    dependency_outputs=(ContextDoc("Docs/PRD.md", "Invoices, refunds, receipts."),),
    template=None,
    template_path=None,
    model=None,
    params=(("audience", "developers"),),
    timeout=60.0,
)


def request(**changes: object) -> RunRequest:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


def test_default_template_includes_persona_body_context_and_dependencies() -> None:
    result = TemplateRuntime().run(BASE)
    assert result.runtime == "template"
    text = result.text
    order = [
        BASE.persona,
        BASE.body,
        "## Context: Docs/Project Brief.md",
        "Billing for small shops.",
        "## Output of Docs/PRD.md",
        "Invoices, refunds, receipts.",
    ]
    positions = [text.index(part) for part in order]
    assert positions == sorted(positions)


def test_default_template_leaves_out_what_is_empty() -> None:
    text = TemplateRuntime().render(request(persona="", context=(), dependency_outputs=()))
    assert text.strip() == BASE.body
    assert "Context" not in text


def test_named_template_sees_every_variable() -> None:
    template = (
        "# For {{ params.audience }}\n"
        "{{ persona | upper }}\n"
        "{% for doc in context %}- [[{{ doc.path }}]]: {{ doc.text }}\n{% endfor %}"
        "{% for doc in dependency_outputs %}after {{ doc.path }}{% endfor %}\n"
        "{{ body }} ({{ model or 'no model' }})"
    )
    text = TemplateRuntime().render(request(template=template, template_path="Templates/API.md"))
    assert text == (
        "# For developers\n"
        "YOU ARE WINSTON, A PRAGMATIC ARCHITECT.\n"
        "- [[Docs/Project Brief.md]]: Billing for small shops.\n"
        "after Docs/PRD.md\n"
        "Design the public API of the billing service. (no model)"
    )


def test_undefined_names_fail_naming_template_and_line() -> None:
    template = "Title\n\n{{ project_name }}"
    with pytest.raises(TemplateRenderError) as caught:
        TemplateRuntime().render(request(template=template, template_path="Templates/Brief.md"))
    assert str(caught.value) == "template Templates/Brief.md, line 3: 'project_name' is undefined"
    assert (caught.value.template, caught.value.line) == ("Templates/Brief.md", 3)


def test_syntax_errors_name_the_template() -> None:
    with pytest.raises(TemplateRenderError) as caught:
        TemplateRuntime().render(request(template="ok\n{% for x in %}", template_path="T.md"))
    assert str(caught.value).startswith("template T.md, line 2: ")


@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ joiner.__init__.__globals__.os }}",
        "{{ namespace.__init__.__globals__ }}",
        "{{ body.__class__.__base__ }}",
        "{{ context[0].__class__ }}",
        "{{ context.append(1) }}",
        "{{ params.update(a=1) }}",
        "{{ self._TemplateReference__context }}",
    ],
)
def test_sandbox_refuses_escapes(escape: str) -> None:
    with pytest.raises(TemplateRenderError) as caught:
        TemplateRuntime().render(request(template=escape, template_path="Templates/Evil.md"))
    message = str(caught.value)
    assert message.startswith("template Templates/Evil.md, line 1: ")
    assert "unsafe" in message or "sandbox" in message


@pytest.mark.parametrize(
    "bomb",
    [
        "{{ 'a' * 10**8 }}",
        "{{ [1, 2] * 10**7 }}",
        "{{ 2 ** 1000000 }}",
        "{{ (10**4) ** 10000 }}",
        "{% set n = 10**3000 %}{{ n * n * n * n * n * n * n * n * n * n * n }}",
        "{{ range(10**9) }}",
    ],
)
def test_sandbox_refuses_memory_bombs(bomb: str) -> None:
    with pytest.raises(TemplateRenderError):
        TemplateRuntime().render(request(template=bomb, template_path="Templates/Bomb.md"))


def test_guards_leave_ordinary_arithmetic_alone() -> None:
    template = "{{ 2 ** 10 }} {{ 'ab' * 3 }} {{ 1.5 * 2 }} {{ [0] * 2 }}"
    assert TemplateRuntime().render(request(template=template)) == "1024 ababab 3.0 [0, 0]"


def test_errors_inside_templates_become_template_errors() -> None:
    with pytest.raises(TemplateRenderError, match=r"line 1: ZeroDivisionError"):
        TemplateRuntime().render(request(template="{{ 1 / 0 }}", template_path="Z.md"))
    with pytest.raises(TemplateRenderError, match="no loader"):
        TemplateRuntime().render(request(template="{% include 'x' %}", template_path="I.md"))


def test_template_errors_survive_pickling() -> None:
    error = TemplateRenderError("Templates/A.md", 4, "'x' is undefined")
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.line) == (str(error), 4)


def test_rendering_is_repeatable_across_cached_compiles() -> None:
    runtime = TemplateRuntime()
    first = runtime.render(request(template="{{ body }}!", template_path="A.md"))
    second = runtime.render(request(template="{{ body }}!", body="other", template_path="A.md"))
    assert (first, second) == (BASE.body + "!", "other!")
