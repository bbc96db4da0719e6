"""A small OpenAI-compatible chat server on 127.0.0.1: the project's only stand-in.

Tests and benchmarks use it as a context manager:

    with LoopbackLLM(latency=lambda: 0.01, fail_first=2) as server:
        LlmRuntime(server.base_url).run(request)
        assert server.calls == 3

It answers POST /v1/chat/completions with a configurable reply, latency and failures,
reports `usage` (whitespace-separated words as tokens) and records what it received.
`script` answers chosen calls with any status, headers and body, such as a real server's
recorded answer (`Answer.recorded`, for tests/fixtures/llm_servers/), and `finish_reason`
sets the reason of its own replies ("length" for an answer cut off at max_tokens).
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

Messages = Sequence[Mapping[str, Any]]
CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class ReceivedRequest:
    """One POST to the chat endpoint, as the server saw it."""

    authorization: str | None
    body: Mapping[str, Any]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list(self.body.get("messages", []))


@dataclass(frozen=True)
class Answer:
    """One scripted HTTP answer: a body that is not a str is sent as JSON."""

    status: int = 200
    body: object = None
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def recorded(cls, data: Mapping[str, Any]) -> Answer:
        """From a recorded answer: `{"status": ..., "headers": {...}, "body": ...}`."""
        return cls(int(data["status"]), data["body"], dict(data.get("headers") or {}))

    def encoded(self) -> bytes:
        text = self.body if isinstance(self.body, str) else json.dumps(self.body)
        return text.encode()


Script = Callable[[int, Mapping[str, Any]], Answer | None]  # (0-based call, body) -> answer


def digest_reply(messages: Messages) -> str:
    """The default reply: names a digest of the messages, so distinct prompts differ."""
    encoded = json.dumps(list(messages), sort_keys=True).encode()
    return f"loopback reply {hashlib.sha256(encoded).hexdigest()[:16]}"


def word_count(text: str) -> int:
    """The server's token count: whitespace-separated words."""
    return len(text.split())


def no_latency() -> float:
    return 0.0


class LoopbackLLM:
    """An OpenAI-compatible server on a free loopback port; start and stop it with `with`."""

    def __init__(
        self,
        *,
        reply: Callable[[Messages], str] = digest_reply,
        latency: Callable[[], float] = no_latency,
        fail_first: int = 0,
        fail_always: bool = False,
        fail_status: int = 500,
        retry_after: float | None = None,
        hang: bool = False,
        report_usage: bool = True,
        finish_reason: str = "stop",
        script: Script | None = None,
    ) -> None:
        """`latency` gives the seconds to wait before each answer. The first `fail_first`
        calls (or all, with `fail_always`) answer `fail_status`, with a Retry-After header
        when `retry_after` is set. `hang` answers nothing until the server stops. `script`
        is asked first for each call, after its latency; None from it answers as usual."""
        self.reply = reply
        self.latency = latency
        self.fail_first = fail_first
        self.fail_always = fail_always
        self.fail_status = fail_status
        self.retry_after = retry_after
        self.hang = hang
        self.report_usage = report_usage
        self.finish_reason = finish_reason
        self.script = script
        self._lock = threading.Lock()
        self._received: list[ReceivedRequest] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as its base URL, e.g. http://127.0.0.1:PORT/v1.

        It stays readable after the server stops (then nothing listens there)."""
        if self._port is None:
            raise RuntimeError("the loopback LLM server has not been started")
        return f"http://127.0.0.1:{self._port}/v1"

    @property
    def calls(self) -> int:
        """How many chat requests have arrived, answered or not."""
        with self._lock:
            return len(self._received)

    @property
    def received(self) -> tuple[ReceivedRequest, ...]:
        with self._lock:
            return tuple(self._received)

    def __enter__(self) -> LoopbackLLM:
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", 0), _Handler, self)
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="loopback-llm",
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving, release waiting handlers, and join every thread it started."""
        if self._server is None or self._thread is None:
            return
        self._stopping.set()  # wakes handlers sleeping through latency or a hang
        self._server.shutdown()
        self._server.server_close()  # joins the handler threads
        self._thread.join()
        self._server = self._thread = None

    def _record(self, request: ReceivedRequest) -> int:
        """Keep the request; return its 0-based call number."""
        with self._lock:
            self._received.append(request)
            return len(self._received) - 1

    def _answer(self, call: int, body: Mapping[str, Any]) -> Answer:
        """The answer to call number `call`, after its latency."""
        if self.fail_always or call < self.fail_first:
            message = f"loopback failure on call {call + 1}"
            error = {"error": {"message": message, "type": "server_error"}}
            waits = {} if self.retry_after is None else {"Retry-After": f"{self.retry_after:g}"}
            return Answer(self.fail_status, error, waits)
        self._stopping.wait(self.latency())
        scripted = self.script(call, body) if self.script is not None else None
        if scripted is not None:
            return scripted
        messages = body.get("messages", [])
        text = self.reply(messages)
        answer: dict[str, Any] = {
            "id": f"chatcmpl-loopback-{call + 1}",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": self.finish_reason,
                }
            ],
        }
        if self.report_usage:
            prompt = sum(word_count(str(m.get("content", ""))) for m in messages)
            completion = word_count(text)
            answer["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        return Answer(200, answer)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # so server_close() joins handlers and tests see no leaked threads
    request_queue_size = 128  # the default 5 drops connects from busy clients (1 s SYN retry)

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], owner: LoopbackLLM
    ) -> None:
        self.owner = owner
        super().__init__(address, handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that give up (timeouts, closed sockets) are expected; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers at shutdown
    timeout = 10  # seconds a silent client may hold a handler thread

    def do_POST(self) -> None:
        owner = cast(_Server, self.server).owner
        if self.path.rstrip("/") != CHAT_PATH:
            self._send(
                Answer(HTTPStatus.NOT_FOUND, {"error": {"message": f"no route {self.path}"}})
            )
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._send(
                Answer(HTTPStatus.BAD_REQUEST, {"error": {"message": "expected JSON messages"}})
            )
            return
        call = owner._record(ReceivedRequest(self.headers.get("Authorization"), body))
        if owner.hang:
            owner._stopping.wait()
            return  # close without an answer
        self._send(owner._answer(call, body))

    def _send(self, answer: Answer) -> None:
        data = answer.encoded()
        headers = dict(answer.headers)
        if not any(name.lower() == "content-type" for name in headers):
            headers["Content-Type"] = "application/json"
        try:
            self.send_response(answer.status)
            for name, value in headers.items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:  # the client stopped waiting
            pass

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests and benchmarks read calls and `received` instead."""


def free_port() -> int:
    """A loopback port that was free a moment ago: nothing listens there (a "down" server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
