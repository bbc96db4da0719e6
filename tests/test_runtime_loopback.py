"""The loopback OpenAI-compatible server itself, spoken to with plain httpx."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.llm_servers import always, recorded, when
from vault_bmad.runtimes.loopback_llm import Answer, LoopbackLLM, digest_reply, free_port

MESSAGES = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi there"}]


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    assert set(threading.enumerate()) - before == set()


def post(server: LoopbackLLM, body: object, timeout: float = 5.0) -> httpx.Response:
    return httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=timeout)


def test_answers_like_an_openai_server() -> None:
    with LoopbackLLM() as server:
        answer = post(server, {"model": "m", "messages": MESSAGES}).json()
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "m"
    assert answer["choices"][0]["message"] == {
        "role": "assistant",
        "content": digest_reply(MESSAGES),
    }
    assert answer["usage"] == {"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7}


def test_digests_differ_for_different_messages() -> None:
    other = [{"role": "user", "content": "Hi there!"}]
    assert digest_reply(MESSAGES) != digest_reply(other)
    assert digest_reply(MESSAGES) == digest_reply([dict(m) for m in MESSAGES])


def test_fails_the_first_calls_then_recovers() -> None:
    with LoopbackLLM(fail_first=2, fail_status=503, retry_after=1.5) as server:
        statuses = [post(server, {"messages": MESSAGES}) for _ in range(3)]
    assert [r.status_code for r in statuses] == [503, 503, 200]
    assert statuses[0].headers["Retry-After"] == "1.5"
    assert server.calls == 3


def test_rejects_what_is_not_a_chat_request() -> None:
    with LoopbackLLM() as server:
        assert post(server, {"prompt": "no messages"}).status_code == 400
        bad_path = httpx.post(f"{server.base_url}/completions", json={"messages": MESSAGES})
        assert bad_path.status_code == 404
        assert server.calls == 0


def test_counts_calls_from_many_threads() -> None:
    with LoopbackLLM(latency=lambda: 0.01) as server:
        threads = [
            threading.Thread(target=post, args=(server, {"messages": MESSAGES})) for _ in range(16)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert server.calls == 16


def test_a_hanging_server_still_shuts_down_cleanly() -> None:
    with LoopbackLLM(hang=True) as server:
        with pytest.raises(httpx.ReadTimeout):
            post(server, {"messages": MESSAGES}, timeout=0.2)
        assert server.calls == 1
    with pytest.raises(httpx.ConnectError):
        post(server, {"messages": MESSAGES})  # nothing listens once it has stopped


def test_free_port_has_no_listener() -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{free_port()}/")


def test_replays_a_recorded_answer_with_its_status_headers_and_body() -> None:
    azure = recorded("openai/azure_rate_limit_retry_after")
    with LoopbackLLM(script=always(azure)) as server:
        response = post(server, {"messages": MESSAGES})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "33"
    assert response.json() == azure.body


def test_scripts_answer_chosen_requests_and_text_bodies() -> None:
    page = Answer(502, "<html>Bad gateway</html>", {"Content-Type": "text/html"})
    with LoopbackLLM(script=when("broken", page)) as server:
        broken = post(server, {"messages": [{"role": "user", "content": "a broken one"}]})
        fine = post(server, {"messages": MESSAGES})
    assert (broken.status_code, broken.text) == (502, "<html>Bad gateway</html>")
    assert broken.headers["Content-Type"] == "text/html"
    assert fine.status_code == 200


def test_finish_reason_and_nul_bytes_in_replies() -> None:
    with LoopbackLLM(reply=lambda messages: "cut\x00off", finish_reason="length") as server:
        choice = post(server, {"messages": MESSAGES}).json()["choices"][0]
    assert choice == {
        "index": 0,
        "message": {"role": "assistant", "content": "cut\x00off"},
        "finish_reason": "length",
    }
