"""What an OpenAI-compatible server's answer means: the rules that classify it, in one place.

The HTTP status decides, never `error.type`, which differs by server and version. Three
exceptions, each found in the servers' code (tests/fixtures/llm_servers/README.md):
llama.cpp answers 500 for errors retrying cannot fix (`tools param requires --jinja
flag`, messages it cannot parse); OpenAI answers 429 for an empty account
(`insufficient_quota`); and a server may ask to wait longer than any retry waits
(`Retry-After: 86400`, Azure's daily quota).

| answer | kind |
|---|---|
| no connection (refused, DNS, connect timeout) | transient, the endpoint unreachable |
| no answer in time, connection lost mid-answer | transient |
| 408, 409, 429 | transient, waiting at least what Retry-After asks |
| 429 `insufficient_quota`, or a wait longer than `max_wait_s` | deterministic |
| 5xx with a message known to be llama.cpp's deterministic ones | deterministic |
| other 5xx | transient |
| other 4xx (context length, bad key, unknown model, bad parameter) | deterministic |
| 200 that is not a chat completion | deterministic |
"""

from __future__ import annotations

import email.utils
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from vault_bmad.errors import Failure, FailureKind

SNIPPET_CHARS = 300  # of a body whose message cannot be found
RETRIED_4XX = frozenset({408, 409, 429})
QUOTA_CODES = frozenset({"insufficient_quota"})
DETERMINISTIC_5XX = (  # llama.cpp's ex_wrapper turns these into 500 server_error
    "requires --jinja flag",
    "failed to parse messages",
    "json.exception.parse_error",
)
# A server that cannot take `tools` (issue 16's ask_user): llama.cpp without --jinja (500),
# vLLM without --enable-auto-tool-choice (400), an Ollama model without the tools capability
# (400, "<model> does not support tools").
_REFUSES_TOOLS = re.compile(
    r"tools? param requires --jinja|tool choice requires --enable-auto-tool-choice"
    r"|does not support tools",
    re.IGNORECASE,
)
_CONTEXT_SIGNALS = frozenset({"exceed_context_size_error", "context_length_exceeded"})
_CONTEXT_WORDS = re.compile(
    r"maximum context length|exceeds the available context size|context (?:length|window|size)",
    re.IGNORECASE,
)
_TOKEN_COUNTS = re.compile(r"(\d+) (?:input )?tokens")


def error_fields(text: str) -> dict[str, Any]:
    """The error object of a body in any of the three shapes servers send:
    `{"error": {...}}`, `{"error": "text"}` (vLLM 401/503) and vLLM's old flat
    `{"object": "error", "message": ...}`; empty when the body is not JSON."""
    try:
        body = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    error = body.get("error", body if "message" in body else None)
    if isinstance(error, str):
        return {"message": error}
    return error if isinstance(error, dict) else {}


def error_message(text: str) -> str:
    """The server's own words: its error message, else the start of the body."""
    message = error_fields(text).get("message")
    if isinstance(message, str) and message.strip():
        return message.strip()
    return text[:SNIPPET_CHARS].strip()


def retry_after_s(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds the server asks to wait: `retry-after-ms`, or `Retry-After` as seconds or
    an HTTP date (`now` is the wall clock, epoch seconds). None when it asks nothing."""
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    millis = _number(lowered.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = lowered.get("retry-after")
    if not value:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now) if when.tzinfo is not None else None


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text else math.nan
    except ValueError:
        return None
    return max(0.0, value) if math.isfinite(value) else None


def refuses_tools(status: int, text: str) -> bool:
    """Whether an error answer says the server or model cannot take `tools` at all, so
    that the request may go again without them."""
    return status in (400, 500) and bool(_REFUSES_TOOLS.search(error_message(text)))


def context_overflow(status: int, text: str) -> str | None:
    """When a 400/413 says the prompt does not fit the model's context: a hint with the
    numbers the server gave, else None."""
    if status not in (400, 413):
        return None
    fields = error_fields(text)
    message = str(fields.get("message", ""))
    signal = {str(fields.get("type")), str(fields.get("code"))} & _CONTEXT_SIGNALS
    if not signal and not _CONTEXT_WORDS.search(message):
        return None
    prompt, context = fields.get("n_prompt_tokens"), fields.get("n_ctx")
    if not (isinstance(prompt, int) and isinstance(context, int)):
        counts = [int(n) for n in _TOKEN_COUNTS.findall(message)]
        context, prompt = (counts[0], counts[1]) if len(counts) >= 2 else (None, None)
        if "request (" in message and context is not None:  # llama.cpp: prompt first
            prompt, context = context, prompt
    sizes = f" ({prompt} tokens for a context of {context})" if prompt and context else ""
    return (
        f"the prompt does not fit the model's context{sizes}: shorten the task's body, "
        "context notes or max_tokens, or give the server a larger context"
    )


def classify_answer(
    status: int,
    headers: Mapping[str, str],
    text: str,
    *,
    url: str,
    max_wait_s: float,
    now: float,
) -> Failure:
    """The Failure an HTTP error answer (status >= 400) from `url` means."""
    said = error_message(text)
    base = f"LLM server {url} answered HTTP {status}" + (f": {said}" if said else "")
    fields = error_fields(text)
    wait = retry_after_s(headers, now)
    if status == 429 and {str(fields.get("code")), str(fields.get("type"))} & QUOTA_CODES:
        return _deterministic(f"{base} (the account's quota is spent; retrying cannot help)")
    if status in RETRIED_4XX or status >= 500:
        if status >= 500 and any(words in said.lower() for words in DETERMINISTIC_5XX):
            return _deterministic(f"{base} (the server's setup refuses this request)")
        if wait is not None and wait > max_wait_s:
            return _deterministic(
                f"{base} (it asks to wait {wait:g} s, longer than llm_give_up_s = "
                f"{max_wait_s:g} s; try again later)"
            )
        return Failure(FailureKind.TRANSIENT, base, endpoint=url, retry_after_s=wait)
    hint = context_overflow(status, text)
    return _deterministic(f"{base} ({hint})" if hint else base)


def not_a_completion(url: str, text: str) -> Failure:
    """A 200 answer without a chat completion in it (a proxy's page, another API)."""
    snippet = text[:SNIPPET_CHARS].strip()
    return _deterministic(
        f"LLM server {url} answered without an OpenAI-compatible chat completion"
        + (f": {snippet}" if snippet else "")
    )


def unreachable(url: str, reason: str) -> Failure:
    return Failure(
        FailureKind.TRANSIENT,
        f"LLM server {url} could not be reached ({reason})",
        endpoint=url,
        unreachable=True,
    )


def no_answer(url: str, reason: str, *, timed_out: bool) -> Failure:
    return Failure(
        FailureKind.TRANSIENT, f"LLM server {url} {reason}", endpoint=url, timed_out=timed_out
    )


def _deterministic(message: str) -> Failure:
    return Failure(FailureKind.DETERMINISTIC, message)
