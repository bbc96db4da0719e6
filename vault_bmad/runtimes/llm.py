"""The llm runtime: one chat completion from any OpenAI-compatible server, through httpx.

The persona is the system message; the body, context notes, dependency outputs and the
task's template make the user message. Failures that may pass (no connection, timeout,
5xx, 429) are retried with exponential backoff and jitter within the task's timeout.
The API key goes only into the Authorization header, never into a message.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from vault_bmad.errors import RuntimeUnavailable, TaskTimeout
from vault_bmad.runtimes.base import RunRequest, RuntimeOutput

if TYPE_CHECKING:
    from vault_bmad.config import Settings

_SNIPPET_CHARS = 300


def user_message(request: RunRequest) -> str:
    """The body, then each context note, dependency output and the template, as sections."""
    parts = [request.body.strip()]
    parts += [f"## Context: {doc.path}\n\n{doc.text.strip()}" for doc in request.context]
    parts += [
        f"## Output of {doc.path}\n\n{doc.text.strip()}" for doc in request.dependency_outputs
    ]
    if request.template is not None:
        parts.append(f"## Template to follow\n\n{request.template.strip()}")
    return "\n\n".join(parts) + "\n"


def chat_messages(request: RunRequest) -> list[dict[str, str]]:
    """The persona as the system message (when there is one), then the user message."""
    system = [{"role": "system", "content": request.persona}] if request.persona.strip() else []
    return [*system, {"role": "user", "content": user_message(request)}]


def backoff_delay(attempt: int, base_s: float, max_s: float, jitter: float) -> float:
    """Seconds to wait after failed attempt `attempt` (0-based): doubling, capped, then
    scaled by 0.5-1.0 with `jitter` in [0, 1) so that clients retrying together spread out."""
    return min(max_s, base_s * 2.0**attempt) * (0.5 + jitter / 2)


def shown_url(url: str) -> str:
    """The URL without any user name or password in it, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


class LlmRuntime:
    """Asks an OpenAI-compatible server (Ollama, vLLM, llama.cpp, OpenAI) for one completion."""

    name = "llm"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str = "",
        default_model: str = "llama3.1",
        timeout_s: float = 60.0,
        retries: int = 3,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._shown_url = shown_url(self.url)
        self._api_key = api_key
        self._default_model = default_model
        self._timeout_s = timeout_s
        self._retries = retries
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LlmRuntime:
        return cls(
            settings.llm_base_url,
            api_key=settings.llm_api_key,
            default_model=settings.llm_model,
            timeout_s=settings.llm_timeout_s,
            retries=settings.llm_retries,
            backoff_base_s=settings.backoff_base_s,
            backoff_max_s=settings.backoff_max_s,
        )

    def __repr__(self) -> str:
        return f"LlmRuntime({self._shown_url!r}, model={self._default_model!r})"

    def run(self, request: RunRequest) -> RuntimeOutput:
        model = request.model or self._default_model
        payload = {**dict(request.params), "model": model, "messages": chat_messages(request)}
        payload["stream"] = False
        deadline = self._clock() + request.timeout
        attempts, last_failure = 0, "the task's timeout left no time to ask"
        while attempts <= self._retries:
            remaining = deadline - self._clock()
            if remaining <= 0:
                break
            attempts += 1
            wait_at_least = 0.0
            try:
                response = self._post(payload, timeout=min(self._timeout_s, remaining))
            except httpx.TimeoutException:
                last_failure = f"no answer within {min(self._timeout_s, remaining):.3g} s"
            except httpx.TransportError as exc:
                last_failure = f"could not be reached ({exc or type(exc).__name__})"
            else:
                status = response.status_code
                if status < 400:
                    return self._result(response, model)
                last_failure = f"answered HTTP {status}{self._detail(response)}"
                if status != 429 and status < 500:
                    raise RuntimeUnavailable(f"LLM server {self._shown_url} {last_failure}")
                wait_at_least = _retry_after_s(response)
            if attempts <= self._retries:
                delay = backoff_delay(
                    attempts - 1, self._backoff_base_s, self._backoff_max_s, self._jitter()
                )
                delay = max(delay, min(wait_at_least, self._backoff_max_s))
                self._sleep(max(0.0, min(delay, deadline - self._clock())))
        message = (
            f"LLM server {self._shown_url} failed after {attempts} attempt(s) "
            f"within the task's {request.timeout:g} s timeout; the last: {last_failure}"
        )
        if last_failure.startswith("no answer") and self._clock() >= deadline:
            raise TaskTimeout(message)
        raise RuntimeUnavailable(message)

    def close(self) -> None:
        """Close the pooled connections; a later run opens new ones."""
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def __enter__(self) -> LlmRuntime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _post(self, payload: dict[str, Any], *, timeout: float) -> httpx.Response:
        # One pooled client, shared by all threads: building one costs ~30 ms (its TLS
        # context), and kept-alive connections save a handshake per request.
        with self._lock:
            if self._http is None:
                headers = {"Accept": "application/json"}
                if self._api_key:
                    headers["Authorization"] = f"Bearer {self._api_key}"
                self._http = httpx.Client(headers=headers)
            client = self._http
        return client.post(self.url, json=payload, timeout=timeout)

    def _result(self, response: httpx.Response, model: str) -> RuntimeOutput:
        try:
            data = response.json()
            text = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            text = None
        if not isinstance(text, str):
            raise RuntimeUnavailable(
                f"LLM server {self._shown_url} answered HTTP {response.status_code} without "
                f"a chat completion{self._detail(response)}"
            )
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        return RuntimeOutput(
            text=text,
            runtime=self.name,
            model=model,
            tokens_in=_count(usage.get("prompt_tokens")),
            tokens_out=_count(usage.get("completion_tokens")),
        )

    def _detail(self, response: httpx.Response) -> str:
        """The start of the answer's body, with the API key blanked should a server echo it."""
        snippet = response.text[:_SNIPPET_CHARS].strip()
        if self._api_key:
            snippet = snippet.replace(self._api_key, "***")
        return f": {snippet}" if snippet else ""


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _retry_after_s(response: httpx.Response) -> float:
    """Seconds a 429/503 answer asks us to wait, when it gives them as a number."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "0")))
    except ValueError:
        return 0.0
