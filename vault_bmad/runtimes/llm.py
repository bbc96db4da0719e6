"""The llm runtime: one chat completion from any OpenAI-compatible server, through httpx.

The persona is the system message; the body, context notes, dependency outputs and the
task's template make the user message; the task's generation parameters (`max_tokens`,
`temperature`, ...) are sent as they are named. Each `run` is one request: a failure is
classified on the spot (`runtimes/llm_errors.py`) and raised as AttemptFailed, and the
engine decides whether and when to try again. An answer cut off at its token limit
(`finish_reason: "length"`) comes back marked truncated. The API key goes only into the
Authorization header, never into a message.

The model is offered the `ask_user` tool (`runtimes/ask_tool.py`) while its task may ask
its user; a call to it ends the attempt asking. A server or model that cannot take tools
at all is asked once more without them, and never offered them again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx

from vault_bmad.errors import AttemptFailed, Failure, FailureKind
from vault_bmad.runtimes import ask_tool, llm_errors
from vault_bmad.runtimes.base import RunRequest, RuntimeOutput
from vault_bmad.runtimes.llm_url import chat_url

if TYPE_CHECKING:
    from vault_bmad.config import Settings

CONNECT_TIMEOUT_S = 5.0  # a host that does not take the connection in this long is not there


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


def chat_messages(request: RunRequest) -> list[dict[str, Any]]:
    """The persona as the system message (when there is one), then the user message, then
    the conversation so far when the agent asked its user and has the answers."""
    system = [{"role": "system", "content": request.persona}] if request.persona.strip() else []
    user = {"role": "user", "content": user_message(request)}
    return [*system, user, *ask_tool.conversation(request.rounds)]


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
        max_wait_s: float = 60.0,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """`max_wait_s` is the longest wait a server may ask for (Retry-After) and still be
        tried again: as long as the engine waits for an endpoint before it gives up."""
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.endpoint = chat_url(base_url)
        self._api_key = api_key
        self._default_model = default_model
        self._timeout_s = timeout_s
        self._max_wait_s = max_wait_s
        self._wall = wall
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None
        self._without_tools: set[str] = set()  # models whose server refused `tools`

    @classmethod
    def from_settings(cls, settings: Settings) -> LlmRuntime:
        return cls(
            settings.llm_base_url,
            api_key=settings.llm_api_key,
            default_model=settings.llm_model,
            timeout_s=settings.llm_timeout_s,
            max_wait_s=settings.llm_give_up_s,
        )

    def __repr__(self) -> str:
        return f"LlmRuntime({self.endpoint!r}, model={self._default_model!r})"

    def run(self, request: RunRequest) -> RuntimeOutput:
        """One chat completion; raises AttemptFailed saying what went wrong and whether
        trying again may help."""
        model = request.model or self._default_model
        payload = {**dict(request.params), "model": model, "messages": chat_messages(request)}
        payload["stream"] = False
        with self._lock:
            offer = (request.may_ask or bool(request.rounds)) and model not in self._without_tools
        if offer:  # with answers, the tool stays defined for the calls the messages hold
            payload["tools"] = [ask_tool.TOOL]
        read_s = min(self._timeout_s, request.timeout)
        response = self._send(payload, read_s)
        if offer and llm_errors.refuses_tools(response.status_code, response.text):
            with self._lock:
                self._without_tools.add(model)
            del payload["tools"]
            response = self._send(payload, read_s)
        if response.status_code >= 400:
            raise AttemptFailed(
                llm_errors.classify_answer(
                    response.status_code,
                    response.headers,
                    self._blank_key(response.text),
                    url=self.endpoint,
                    max_wait_s=self._max_wait_s,
                    now=self._wall(),
                )
            )
        return self._result(response, model)

    def _send(self, payload: dict[str, Any], read_s: float) -> httpx.Response:
        """The server's answer to one request; raises AttemptFailed when there is none."""
        try:
            return self._post(payload, httpx.Timeout(read_s, connect=CONNECT_TIMEOUT_S))
        except httpx.ConnectTimeout:
            failure = llm_errors.unreachable(self.endpoint, "connect timed out")
            raise AttemptFailed(failure) from None
        except httpx.ConnectError as exc:
            raise AttemptFailed(llm_errors.unreachable(self.endpoint, _reason(exc))) from None
        except httpx.TimeoutException:
            failure = llm_errors.no_answer(
                self.endpoint, f"sent no answer within {read_s:g} s", timed_out=True
            )
            raise AttemptFailed(failure) from None
        except httpx.TransportError as exc:
            failure = llm_errors.no_answer(
                self.endpoint, f"broke off its answer ({_reason(exc)})", timed_out=False
            )
            raise AttemptFailed(failure) from None

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

    def _post(self, payload: dict[str, Any], timeout: httpx.Timeout) -> httpx.Response:
        return self._client().post(self.url, json=payload, timeout=timeout)

    def _client(self) -> httpx.Client:
        # One pooled client, shared by all threads: kept-alive connections save a handshake
        # per request. Its TLS context (certificates loaded: 30-60 ms, holding the
        # interpreter lock) is built only for an https server; a plain-http one (a local
        # Ollama or llama.cpp) never speaks TLS, as redirects are not followed.
        with self._lock:
            if self._http is None:
                headers = {"Accept": "application/json"}
                if self._api_key:
                    headers["Authorization"] = f"Bearer {self._api_key}"
                tls = urlsplit(self.url).scheme == "https"
                self._http = httpx.Client(headers=headers, verify=tls, follow_redirects=False)
            return self._http

    def _result(self, response: httpx.Response, model: str) -> RuntimeOutput:
        try:
            data = response.json()
            choice = data["choices"][0]
            message = choice["message"]
            text = message.get("content")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise AttemptFailed(
                llm_errors.not_a_completion(self.endpoint, self._blank_key(response.text))
            ) from None
        try:
            ask = ask_tool.asked(message)
        except ask_tool.MalformedCall as exc:
            message_text = f"LLM server {self.endpoint} answered with a malformed tool call: {exc}"
            raise AttemptFailed(Failure(FailureKind.DETERMINISTIC, message_text)) from None
        if ask is None and not isinstance(text, str):
            raise AttemptFailed(
                llm_errors.not_a_completion(self.endpoint, "no text in its message")
            )
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        return RuntimeOutput(
            text=text if isinstance(text, str) and ask is None else "",
            runtime=self.name,
            model=model,
            tokens_in=_count(usage.get("prompt_tokens")),
            tokens_out=_count(usage.get("completion_tokens")),
            truncated=choice.get("finish_reason") == "length",
            ask=ask,
        )

    def _blank_key(self, text: str) -> str:
        """The body with the API key blanked, should a server echo it."""
        return text.replace(self._api_key, "***") if self._api_key else text


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
