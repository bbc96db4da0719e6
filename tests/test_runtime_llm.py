"""The llm runtime against the loopback OpenAI-compatible server."""

from __future__ import annotations

import dataclasses
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest

from tests.llm_servers import always, every_fixture, recorded
from vault_bmad.errors import AttemptFailed, Failure, FailureKind
from vault_bmad.runtimes.base import ContextDoc, RunRequest
from vault_bmad.runtimes.llm import LlmRuntime
from vault_bmad.runtimes.llm_errors import classify_answer, retry_after_s
from vault_bmad.runtimes.llm_url import shown_url
from vault_bmad.runtimes.loopback_llm import Answer, LoopbackLLM, digest_reply, free_port

BASE = RunRequest(
    task_id="write-prd",
    title="Write the PRD",
    runtime="llm",
    agent_id="pm",
    persona="You are John, a product manager.",
    body="Write the PRD for the billing service.",
    context=(ContextDoc("Docs/Project Brief.md", "Billing for small shops."),),
    dependency_outputs=(ContextDoc("Docs/Research.md", "Shops want receipts by email."),),
    template=None,
    template_path=None,
    model=None,
    params=(("temperature", 0.2),),
    timeout=60.0,
)


def request(**changes: object) -> RunRequest:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) - before == set()


MakeRuntime = Callable[..., LlmRuntime]


@pytest.fixture
def runtime() -> Iterator[MakeRuntime]:
    """Builds LlmRuntimes; closes them afterwards."""
    made: list[LlmRuntime] = []

    def make(base_url: str, **options: object) -> LlmRuntime:
        llm = LlmRuntime(base_url, **options)  # type: ignore[arg-type]
        made.append(llm)
        return llm

    yield make
    for llm in made:
        llm.close()


def test_sends_persona_as_system_and_the_rest_as_user(runtime: MakeRuntime) -> None:
    with LoopbackLLM() as server:
        result = runtime(server.base_url, default_model="qwen2.5").run(BASE)
        (received,) = server.received
    system, user = received.messages
    assert system == {"role": "system", "content": BASE.persona}
    assert user["role"] == "user"
    for part in [BASE.body, "Docs/Project Brief.md", "Billing for small shops."]:
        assert part in user["content"]
    assert "## Output of Docs/Research.md\n\nShops want receipts by email." in user["content"]
    assert received.body["model"] == "qwen2.5"
    assert received.body["temperature"] == 0.2
    assert received.body["stream"] is False
    assert result.text == digest_reply(received.messages)
    assert (result.runtime, result.model) == ("llm", "qwen2.5")


def test_records_token_usage_when_reported(runtime: MakeRuntime) -> None:
    with LoopbackLLM(reply=lambda messages: "three word answer") as server:
        result = runtime(server.base_url).run(request(persona="Be brief.", context=()))
        words = sum(len(m["content"].split()) for m in server.received[0].messages)
    assert (result.tokens_in, result.tokens_out) == (words, 3)
    with LoopbackLLM(report_usage=False) as server:
        result = runtime(server.base_url).run(BASE)
    assert (result.tokens_in, result.tokens_out) == (None, None)


def test_no_system_message_without_persona_and_task_model_wins(runtime: MakeRuntime) -> None:
    with LoopbackLLM() as server:
        runtime(server.base_url).run(request(persona="  ", model="mistral"))
        (received,) = server.received
    assert [m["role"] for m in received.messages] == ["user"]
    assert received.body["model"] == "mistral"


def test_template_text_is_handed_over_unrendered(runtime: MakeRuntime) -> None:
    template = "# {{project_name}} PRD\n## Goals"
    with LoopbackLLM() as server:
        runtime(server.base_url).run(request(template=template, template_path="T.md"))
        user = server.received[0].messages[-1]["content"]
    assert user.endswith("## Template to follow\n\n# {{project_name}} PRD\n## Goals\n")


def test_only_an_https_server_gets_a_tls_context_that_checks_certificates() -> None:
    def tls_of(base_url: str) -> ssl.SSLContext:
        with LlmRuntime(base_url) as runtime:
            transport = runtime._client()._transport
            assert isinstance(transport, httpx.HTTPTransport)
            return transport._pool._ssl_context  # type: ignore[return-value]

    assert tls_of("https://llm.example.invalid/v1").verify_mode == ssl.CERT_REQUIRED
    assert tls_of("http://127.0.0.1:11434/v1").verify_mode == ssl.CERT_NONE  # never used


def test_api_key_is_sent_as_bearer_only_when_set(runtime: MakeRuntime) -> None:
    with LoopbackLLM() as server:
        runtime(server.base_url, api_key="sk-test-123").run(BASE)
        runtime(server.base_url).run(BASE)
        with_key, without_key = server.received
    assert with_key.authorization == "Bearer sk-test-123"
    assert without_key.authorization is None
    assert all("sk-test-123" not in str(r.body) for r in server.received)


def failure_of(llm: LlmRuntime, req: RunRequest = BASE) -> Failure:
    with pytest.raises(AttemptFailed) as caught:
        llm.run(req)
    return caught.value.failure


def test_a_dead_server_is_unreachable_naming_the_url(runtime: MakeRuntime) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    failure = failure_of(runtime(url))
    assert failure.kind is FailureKind.TRANSIENT and failure.unreachable
    assert failure.endpoint == f"{url}/chat/completions"
    assert f"{url}/chat/completions could not be reached" in failure.message


def test_each_run_is_one_request_and_a_500_is_transient(runtime: MakeRuntime) -> None:
    with LoopbackLLM(fail_first=1) as server:
        llm = runtime(server.base_url, api_key="sk-very-secret")
        failure = failure_of(llm)
        assert server.calls == 1
        assert llm.run(BASE).text == digest_reply(server.received[-1].messages)
    assert failure.kind is FailureKind.TRANSIENT and not failure.unreachable
    assert failure.counts_toward_health and failure.endpoint == llm.endpoint
    assert "answered HTTP 500: loopback failure on call 1" in failure.message
    assert "sk-very-secret" not in failure.message + repr(llm)


# Each real server's answer, replayed: (fixture, deterministic?, words the message holds).
CASES = [
    ("llama_cpp/context_length_exceeded", True, "9412 tokens for a context of 8192"),
    ("openai/context_length_exceeded", True, "16468 tokens for a context of 16385"),
    ("vllm/context_length_exceeded", True, "40000 tokens for a context of 32768"),
    ("vllm/context_length_exceeded_legacy", True, "does not fit the model's context"),
    ("vllm/max_tokens_too_large", True, "max_tokens"),
    ("llama_cpp/invalid_api_key", True, "HTTP 401: Invalid API Key"),
    ("vllm/unauthorized", True, "HTTP 401: Unauthorized"),
    ("openai/invalid_api_key", True, "Incorrect API key provided"),
    ("ollama/model_not_found", True, "HTTP 404: model 'llama3.1' not found"),
    ("openai/unsupported_parameter", True, "Use 'max_completion_tokens' instead"),
    ("vllm/invalid_temperature", True, "temperature must be non-negative"),
    ("openai/insufficient_quota", True, "quota is spent"),
    ("llama_cpp/tools_without_jinja", True, "requires --jinja flag"),
    ("openai/rate_limit_exceeded", False, "HTTP 429: Rate limit reached"),
    ("openai/azure_rate_limit_retry_after", False, "HTTP 429"),
    ("llama_cpp/loading_model", False, "HTTP 503: Loading model"),
    ("ollama/server_busy", False, "server busy"),
    ("vllm/scaling_unavailable", False, "currently scaling"),
    ("vllm/generation_error", False, "HTTP 500: Internal server error"),
    ("openai/server_error", False, "The server had an error"),
    ("ollama/model_load_failed_memory", False, "more system memory"),
]


@pytest.mark.parametrize(("fixture", "deterministic", "words"), CASES)
def test_real_server_errors_are_classified(
    fixture: str, deterministic: bool, words: str, runtime: MakeRuntime
) -> None:
    with LoopbackLLM(script=always(recorded(fixture))) as server:
        failure = failure_of(runtime(server.base_url))
        assert server.calls == 1
    assert failure.kind is (FailureKind.DETERMINISTIC if deterministic else FailureKind.TRANSIENT)
    assert failure.counts_toward_health is not deterministic
    assert words in failure.message
    assert server.base_url in failure.message


def test_every_other_error_fixture_is_a_deterministic_4xx() -> None:
    covered = {case[0] for case in CASES}
    others = [f for f in every_fixture() if recorded(f).status >= 400 and f not in covered]
    assert len(others) == 10  # unknown models and routes, bad requests and parameters, tools
    for fixture in others:
        answer = recorded(fixture)
        failure = classify_answer(
            answer.status, answer.headers, json.dumps(answer.body), url="u", max_wait_s=60, now=0
        )
        assert 400 <= answer.status < 500 and failure.kind is FailureKind.DETERMINISTIC, fixture


def test_retry_after_is_the_least_wait_and_a_long_one_fails_now(runtime: MakeRuntime) -> None:
    azure = recorded("openai/azure_rate_limit_retry_after")
    assert azure.headers["Retry-After"] == "33"
    with LoopbackLLM(script=always(azure)) as server:
        assert failure_of(runtime(server.base_url)).retry_after_s == 33
        long_wait = failure_of(runtime(server.base_url, max_wait_s=30))
    assert long_wait.kind is FailureKind.DETERMINISTIC
    assert "asks to wait 33 s, longer than llm_give_up_s = 30 s" in long_wait.message


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "2.5"}, 2.5),
        ({"retry-after-ms": "120", "Retry-After": "9"}, 0.12),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}, 30.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:27:00 GMT"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_forms(headers: dict[str, str], seconds: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, tzinfo=UTC).timestamp()
    assert retry_after_s(headers, now) == seconds


def test_a_day_long_wait_in_a_date_fails_at_once() -> None:
    now = datetime(2015, 10, 21, 7, 28, tzinfo=UTC).timestamp()
    tomorrow = {"Retry-After": "Thu, 22 Oct 2015 07:28:00 GMT"}
    failure = classify_answer(429, tomorrow, "{}", url="u", max_wait_s=30, now=now)
    assert failure.kind is FailureKind.DETERMINISTIC
    assert "86400 s" in failure.message


def test_a_slow_server_times_out_as_transient(runtime: MakeRuntime) -> None:
    with LoopbackLLM(latency=lambda: 30) as server:
        failure = failure_of(runtime(server.base_url, timeout_s=0.2))
    assert failure.timed_out and failure.kind is FailureKind.TRANSIENT
    assert not failure.unreachable and failure.counts_toward_health
    assert "sent no answer within 0.2 s" in failure.message


def test_the_task_timeout_bounds_the_wait(runtime: MakeRuntime) -> None:
    with LoopbackLLM(hang=True) as server:
        started = time.monotonic()
        failure = failure_of(runtime(server.base_url, timeout_s=60), request(timeout=0.3))
        assert time.monotonic() - started < 30  # not the runtime's 60 s
    assert "within 0.3 s" in failure.message


def test_wrong_path_is_deterministic(runtime: MakeRuntime) -> None:
    with LoopbackLLM() as server:
        failure = failure_of(runtime(server.base_url + "/wrong"))
        assert server.calls == 0
    assert failure.kind is FailureKind.DETERMINISTIC and "HTTP 404" in failure.message


@pytest.mark.parametrize(
    "body", ["<html>Bad gateway page</html>", {"object": "list", "data": []}, {"choices": []}]
)
def test_an_answer_that_is_no_chat_completion_is_deterministic(
    body: object, runtime: MakeRuntime
) -> None:
    with LoopbackLLM(script=always(Answer(200, body))) as server:
        failure = failure_of(runtime(server.base_url))
    assert failure.kind is FailureKind.DETERMINISTIC
    assert "without an OpenAI-compatible chat completion" in failure.message


@pytest.mark.parametrize("server_name", ["llama_cpp", "ollama", "vllm", "openai"])
def test_real_answers_cut_off_at_the_limit_are_truncated(
    server_name: str, runtime: MakeRuntime
) -> None:
    cut = recorded(f"{server_name}/success_length")
    with LoopbackLLM(script=always(cut)) as server:
        result = runtime(server.base_url).run(BASE)
    assert result.truncated
    usage = cut.body["usage"]  # type: ignore[index]
    assert (result.tokens_in, result.tokens_out) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    with LoopbackLLM(script=always(recorded(f"{server_name}/success_stop"))) as server:
        assert not runtime(server.base_url).run(BASE).truncated


def test_the_loopback_servers_own_length_answer(runtime: MakeRuntime) -> None:
    with LoopbackLLM(finish_reason="length") as server:
        assert runtime(server.base_url).run(BASE).truncated


def test_generation_parameters_are_sent_as_named(runtime: MakeRuntime) -> None:
    params = (("max_tokens", 64), ("seed", 7), ("stop", ["##"]), ("temperature", 0.2))
    with LoopbackLLM() as server:
        runtime(server.base_url).run(request(params=params))
        (received,) = server.received
    assert {key: received.body[key] for key, _ in params} == dict(params)


def test_credentials_in_the_url_are_never_shown(runtime: MakeRuntime) -> None:
    url = f"http://user:hunter2@127.0.0.1:{free_port()}/v1"
    assert shown_url(url) == url.replace("user:hunter2@", "")
    assert "hunter2" not in failure_of(runtime(url)).message


def test_close_releases_the_pool_and_a_later_run_reopens_it(runtime: MakeRuntime) -> None:
    with LoopbackLLM() as server:
        llm = runtime(server.base_url)
        first = llm.run(BASE)
        llm.close()
        second = llm.run(BASE)
        assert server.calls == 2
    assert first.text == second.text


def test_concurrent_requests_from_many_threads(runtime: MakeRuntime) -> None:
    with LoopbackLLM(latency=lambda: 0.02) as server:
        llm = runtime(server.base_url)
        requests = [request(body=f"Task number {n}") for n in range(20)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(llm.run, requests))
        assert server.calls == 20
        by_body = {r.messages[-1]["content"].split("\n")[0]: r for r in server.received}
    for req, result in zip(requests, results, strict=True):
        assert result.text == digest_reply(by_body[req.body].messages)
