"""Shared runtime records: the cache key's parts, and the runtimes built from settings."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import threading
from collections.abc import Iterator

import pytest

from vault_bmad.config import Settings
from vault_bmad.errors import RuntimeRefused
from vault_bmad.runtimes.base import ContextDoc, RunRequest, RuntimeOutput, build_runtimes
from vault_bmad.runtimes.llm import LlmRuntime
from vault_bmad.runtimes.loopback_llm import LoopbackLLM

BASE = RunRequest(
    task_id="t1",
    title="A task",
    runtime="template",
    agent_id="analyst",
    persona="You are Mary.",
    body="Summarise the brief.",
    context=(ContextDoc("Docs/Brief.md", "The brief."),),
    dependency_outputs=(ContextDoc("Docs/Market.md", "The market."),),
    template="{{ body }}",
    template_path="Templates/Summary.md",
    model="llama3.1",
    params=(("temperature", 0.1),),
    timeout=5.0,
    command=("cat",),
)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) - before == set()


def key(request: RunRequest) -> str:
    encoded = json.dumps(request.cache_parts(), sort_keys=True).encode()
    return hashlib.sha256(encoded).hexdigest()


@pytest.mark.parametrize(
    "change",
    [
        {"runtime": "llm"},
        {"model": "qwen2.5"},
        {"params": (("temperature", 0.9),)},
        {"persona": "You are John."},
        {"body": "Summarise the PRD."},
        {"template": "{{ body | upper }}"},
        {"template": None},
        {"context": (ContextDoc("Docs/Brief.md", "The brief, revised."),)},
        {"context": (ContextDoc("Docs/Other.md", "The brief."),)},
        {"context": ()},
        {"dependency_outputs": (ContextDoc("Docs/Market.md", "A new market."),)},
        {"command": ("cat", "-n")},
    ],
)
def test_what_shapes_the_result_changes_the_cache_key(change: dict[str, object]) -> None:
    changed = dataclasses.replace(BASE, **change)  # type: ignore[arg-type]
    assert key(changed) != key(BASE)


@pytest.mark.parametrize(
    "change",
    [
        {"task_id": "t2"},
        {"title": "Another title"},
        {"agent_id": "pm"},
        {"template_path": "Templates/Copy of Summary.md"},
        {"timeout": 60.0},
    ],
)
def test_what_does_not_shape_the_result_keeps_the_cache_key(change: dict[str, object]) -> None:
    changed = dataclasses.replace(BASE, **change)  # type: ignore[arg-type]
    assert key(changed) == key(BASE)


def test_records_are_frozen_and_hashable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        BASE.body = "x"  # type: ignore[misc]
    assert hash(BASE) == hash(dataclasses.replace(BASE))
    assert RuntimeOutput("x", "template") == RuntimeOutput("x", "template", None, None, None)


def test_build_runtimes_from_settings() -> None:
    with LoopbackLLM() as server:
        settings = Settings(
            llm_base_url=server.base_url,
            llm_api_key="sk-built",
            llm_model="phi3",
            command_enabled=True,
            command_allowlist=(sys.executable,),
        )
        runtimes = build_runtimes(settings)
        assert sorted(runtimes) == ["command", "llm", "template"]
        assert all(name == runtime.name for name, runtime in runtimes.items())

        assert runtimes["template"].run(BASE).text == BASE.body
        llm = runtimes["llm"]
        assert isinstance(llm, LlmRuntime)
        with llm:
            result = llm.run(dataclasses.replace(BASE, runtime="llm", model=None))
        (received,) = server.received
    assert (received.authorization, received.body["model"]) == ("Bearer sk-built", "phi3")
    assert result.model == "phi3"

    echo = (sys.executable, "-c", "import sys; print(sys.stdin.read())")
    command_result = runtimes["command"].run(dataclasses.replace(BASE, command=echo))
    assert command_result.text.strip() == BASE.body
    with pytest.raises(RuntimeRefused, match="not in command_allowlist"):
        runtimes["command"].run(BASE)
