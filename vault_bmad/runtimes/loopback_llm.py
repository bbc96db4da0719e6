"""A small OpenAI-compatible chat server on 127.0.0.1: the project's only stand-in.

Tests and benchmarks use it as a context manager:

    with LoopbackLLM(latency=lambda: 0.01, fail_first=2) as server:
        LlmRuntime(server.base_url).run(request)
        assert server.calls == 3

It answers POST /v1/chat/completions with a configurable reply, latency and failures,
reports `usage` (whitespace-separated words as tokens) and records what it received.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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
    ) -> None:
        """`latency` gives the seconds to wait before each answer. The first `fail_first`
        calls (or all, with `fail_always`) answer `fail_status`, with a Retry-After header
        when `retry_after` is set. `hang` answers nothing until the server stops."""
        self.reply = reply
        self.latency = latency
        self.fail_first = fail_first
        self.fail_always = fail_always
        self.fail_status = fail_status
        self.retry_after = retry_after
        self.hang = hang
        self.report_usage = report_usage
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

    def _answer(self, call: int, body: Mapping[str, Any]) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for call number `call`, after its latency."""
        if self.fail_always or call < self.fail_first:
            message = f"loopback failure on call {call + 1}"
            return self.fail_status, {"error": {"message": message, "type": "server_error"}}
        self._stopping.wait(self.latency())
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
                    "finish_reason": "stop",
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
        return 200, answer


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
            self._send(HTTPStatus.NOT_FOUND, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            self._send(HTTPStatus.BAD_REQUEST, {"error": {"message": "expected JSON messages"}})
            return
        call = owner._record(ReceivedRequest(self.headers.get("Authorization"), body))
        if owner.hang:
            owner._stopping.wait()
            return  # close without an answer
        status, answer = owner._answer(call, body)
        extra = {}
        if status != 200 and owner.retry_after is not None:
            extra["Retry-After"] = f"{owner.retry_after:g}"
        self._send(status, answer, extra)

    def _send(self, status: int, payload: object, headers: Mapping[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
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
