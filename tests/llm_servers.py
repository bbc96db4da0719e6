"""The recorded answers of real LLM servers (tests/fixtures/llm_servers/), for the loopback
server to replay."""

from __future__ import annotations

import json
from pathlib import Path

from vault_bmad.runtimes.loopback_llm import Answer, Script

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "llm_servers"


def recorded(name: str) -> Answer:
    """The answer in `<server>/<case>.json`, e.g. "llama_cpp/context_length_exceeded"."""
    return Answer.recorded(json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8")))


def every_fixture() -> list[str]:
    return sorted(p.relative_to(FIXTURES).with_suffix("").as_posix() for p in FIXTURES.glob("*/*"))


def always(answer: Answer) -> Script:
    """A script answering every call with `answer`."""
    return lambda call, body: answer


def when(words: str, answer: Answer) -> Script:
    """A script answering `answer` to requests whose messages hold `words`; others as usual."""

    def script(call: int, body: object) -> Answer | None:
        return answer if words in json.dumps(body) else None

    return script
