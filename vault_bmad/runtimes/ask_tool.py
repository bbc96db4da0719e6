"""The `ask_user` tool the llm runtime offers its models, as OpenAI's API defines tools.

A model that needs its user calls `ask_user` with `{"questions": [...]}`: its message's
`tool_calls[].function.arguments` is that object as a JSON string (llama.cpp, Ollama,
vLLM and OpenAI all send a string; some send an object). The attempt then ends asking.
When the user has answered, the next request carries the conversation so far: the
assistant's message with its tool calls, as the server sent it, then one `tool` message
per call, whose `tool_call_id` names the call and whose content holds the answers.

A call that cannot be read (arguments that are not JSON, no questions, another tool's
name) is the model's mistake, which asking again the same way repeats: `malformed` says
what is wrong, and the runtime fails the attempt for good.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from vault_bmad.runtimes.base import MAX_QUESTIONS, Ask, Round, checked_questions

NAME = "ask_user"
TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": NAME,
        "description": (
            "Ask the user questions you need answered to do the task well, instead of"
            " guessing. The task waits until the user answers in their note; you then get"
            " the answers, in the order of the questions, and go on."
        ),
        "parameters": {
            "type": "object",
            "properties": {
                "questions": {
                    "type": "array",
                    "items": {"type": "string"},
                    "minItems": 1,
                    "description": "The questions, each one clear on its own.",
                }
            },
            "required": ["questions"],
        },
    },
}


class MalformedCall(ValueError):
    """The model called a tool in a way that cannot be read; the message says how."""


def asked(message: Mapping[str, Any]) -> Ask | None:
    """The model's questions, when its message calls `ask_user`; None when it calls no tool.

    Raises MalformedCall when a call cannot be read."""
    calls = message.get("tool_calls")
    if not calls:
        return None
    if not isinstance(calls, list):
        raise MalformedCall(f"tool_calls is not a list: {calls!r:.200}")
    questions: list[str] = []
    kept: list[dict[str, Any]] = []
    counts: list[int] = []
    for number, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise MalformedCall(f"tool call {number + 1} has no function: {call!r:.200}")
        name = function.get("name")
        if name != NAME:
            raise MalformedCall(f"it called {name!r}, a tool vault-bmad does not offer")
        raw = function.get("arguments")
        arguments = _arguments(raw)
        try:
            these = checked_questions(arguments.get("questions"), NAME)
        except ValueError as exc:
            raise MalformedCall(str(exc)) from None
        questions += these
        counts.append(len(these))
        call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
        kept.append(
            {
                "id": call_id or f"call_{number}",
                "type": "function",
                "function": {
                    "name": NAME,
                    "arguments": raw if isinstance(raw, str) else json.dumps(raw),
                },
            }
        )
    if len(questions) > MAX_QUESTIONS:
        raise MalformedCall(f"{len(questions)} questions at once; at most {MAX_QUESTIONS}")
    assistant = {"role": "assistant", "content": message.get("content"), "tool_calls": kept}
    return Ask(tuple(questions), json.dumps({"message": assistant, "counts": counts}))


def _arguments(raw: object) -> dict[str, Any]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise MalformedCall(f"its arguments are not JSON ({exc}): {raw!r:.200}") from None
    if not isinstance(raw, dict):
        raise MalformedCall(f"its arguments are not an object: {raw!r:.200}")
    return raw


def conversation(rounds: Sequence[Round]) -> list[dict[str, Any]]:
    """The messages after the user's first: for each round, the assistant's message with
    its tool calls, then a `tool` message per call holding the answers to its questions.
    A round another runtime asked (its agent changed runtime meanwhile) is told in words."""
    messages: list[dict[str, Any]] = []
    for round_ in rounds:
        pairs = list(zip(round_.ask.questions, round_.answers, strict=True))
        if not round_.ask.call.startswith("{"):
            asked_text = "\n".join(f"- {q}" for q, _ in pairs)
            answered = "\n".join(f"- {q}\n  {a}" for q, a in pairs)
            messages.append({"role": "assistant", "content": f"I need to know:\n{asked_text}"})
            messages.append({"role": "user", "content": f"My answers:\n{answered}"})
            continue
        record = json.loads(round_.ask.call)
        assistant, counts = record["message"], record["counts"]
        messages.append(assistant)
        for call, count in zip(assistant["tool_calls"], counts, strict=True):
            these, pairs = pairs[:count], pairs[count:]
            answers = [{"question": q, "answer": a} for q, a in these]
            content = json.dumps({"answers": answers}, ensure_ascii=False)
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": content})
    return messages
