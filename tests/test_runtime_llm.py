"""The llm runtime against the loopback OpenAI-compatible server."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from vault_bmad.errors import RuntimeUnavailable
from vault_bmad.runtimes.base import ContextDoc, RunRequest
from vault_bmad.runtimes.llm import LlmRuntime, backoff_delay, shown_url
from vault_bmad.runtimes.loopback_llm import LoopbackLLM, digest_reply, free_port

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
    timeout=10.0,
)


def request(**changes: object) -> RunRequest:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


class Sleeps:
    """Records the backoff delays instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) - before == set()


MakeRuntime = Callable[..., LlmRuntime]


@pytest.fixture
def runtime() -> Iterator[MakeRuntime]:
    """Builds LlmRuntimes that record backoff instead of sleeping; closes them afterwards."""
    made: list[LlmRuntime] = []

    def make(base_url: str, sleeps: Sleeps | None = None, **options: object) -> LlmRuntime:
        options.setdefault("jitter", lambda: 0.0)
        llm = LlmRuntime(base_url, sleep=sleeps or Sleeps(), **options)  # type: ignore[arg-type]
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


def test_api_key_is_sent_as_bearer_only_when_set(runtime: MakeRuntime) -> None:
    with LoopbackLLM() as server:
        runtime(server.base_url, api_key="sk-test-123").run(BASE)
        runtime(server.base_url).run(BASE)
        with_key, without_key = server.received
    assert with_key.authorization == "Bearer sk-test-123"
    assert without_key.authorization is None
    assert all("sk-test-123" not in str(r.body) for r in server.received)


def test_down_server_is_retried_then_fails_naming_the_url(runtime: MakeRuntime) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    sleeps = Sleeps()
    llm = runtime(url, sleeps, retries=2, backoff_base_s=0.5, backoff_max_s=30)
    with pytest.raises(RuntimeUnavailable) as caught:
        llm.run(BASE)
    message = str(caught.value)
    assert f"{url}/chat/completions" in message
    assert "failed after 3 attempt(s)" in message and "could not be reached" in message
    assert sleeps.delays == [0.25, 0.5]  # doubling, at the low end of the jitter


def test_server_errors_are_retried_until_one_succeeds(runtime: MakeRuntime) -> None:
    sleeps = Sleeps()
    with LoopbackLLM(fail_first=2) as server:
        result = runtime(server.base_url, sleeps, retries=3).run(BASE)
        assert server.calls == 3
    assert result.text == digest_reply(server.received[-1].messages)
    assert len(sleeps.delays) == 2


def test_persistent_500_fails_after_the_retries_without_echoing_the_key(
    runtime: MakeRuntime,
) -> None:
    with LoopbackLLM(fail_always=True) as server:
        llm = runtime(server.base_url, api_key="sk-very-secret", retries=2)
        with pytest.raises(RuntimeUnavailable) as caught:
            llm.run(BASE)
        assert server.calls == 3
    message = str(caught.value)
    assert server.base_url in message and "answered HTTP 500" in message
    assert "sk-very-secret" not in message and "sk-very-secret" not in repr(llm)


@pytest.mark.parametrize("status", [400, 401, 404])
def test_client_errors_fail_at_once(status: int, runtime: MakeRuntime) -> None:
    sleeps = Sleeps()
    with LoopbackLLM(fail_always=True, fail_status=status) as server:
        with pytest.raises(RuntimeUnavailable, match=f"answered HTTP {status}"):
            runtime(server.base_url, sleeps, retries=3).run(BASE)
        assert server.calls == 1
    assert sleeps.delays == []


def test_rate_limits_are_retried_honouring_retry_after(runtime: MakeRuntime) -> None:
    sleeps = Sleeps()
    with LoopbackLLM(fail_first=1, fail_status=429, retry_after=3) as server:
        runtime(server.base_url, sleeps, retries=1).run(BASE)
        assert server.calls == 2
    assert sleeps.delays == [3.0]


@pytest.mark.parametrize("mode", ["slow", "hang"])
def test_slow_servers_time_out_then_fail(mode: str, runtime: MakeRuntime) -> None:
    server_under_test = (
        LoopbackLLM(hang=True) if mode == "hang" else LoopbackLLM(latency=lambda: 30)
    )
    with server_under_test as server:
        llm = runtime(server.base_url, timeout_s=0.2, retries=1)
        with pytest.raises(RuntimeUnavailable) as caught:
            llm.run(BASE)
        assert server.calls == 2
    assert "no answer within 0.2 s" in str(caught.value)


def test_the_task_timeout_bounds_all_attempts() -> None:
    now = [0.0]

    def advance(seconds: float) -> None:
        now[0] += seconds

    with (
        LoopbackLLM(fail_always=True) as server,
        LlmRuntime(
            server.base_url,
            retries=10,
            backoff_base_s=1.0,
            backoff_max_s=100.0,
            sleep=advance,
            clock=lambda: now[0],
            jitter=lambda: 0.999,
        ) as llm,
    ):
        with pytest.raises(RuntimeUnavailable, match="within the task's 10 s timeout"):
            llm.run(request(timeout=10.0))
        # Delays of about 1, 2 and 4 s fit into 10 s; the next one reaches the deadline.
        assert server.calls == 4
    assert now[0] == pytest.approx(10.0)


def test_wrong_path_is_a_client_error(runtime: MakeRuntime) -> None:
    with LoopbackLLM() as server:
        with pytest.raises(RuntimeUnavailable, match="answered HTTP 404"):
            runtime(server.base_url + "/wrong").run(BASE)
        assert server.calls == 0


def test_credentials_in_the_url_are_never_shown(runtime: MakeRuntime) -> None:
    url = f"http://user:hunter2@127.0.0.1:{free_port()}/v1"
    assert shown_url(url) == url.replace("user:hunter2@", "")
    with pytest.raises(RuntimeUnavailable) as caught:
        runtime(url, retries=0).run(BASE)
    assert "hunter2" not in str(caught.value)


def test_backoff_doubles_is_capped_and_jittered() -> None:
    assert [backoff_delay(n, 0.5, 3.0, 0.0) for n in range(5)] == [0.25, 0.5, 1.0, 1.5, 1.5]
    assert backoff_delay(2, 0.5, 30.0, 0.999) == pytest.approx(2.0, rel=1e-3)


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
