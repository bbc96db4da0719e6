"""Endpoints as attempts find them: down from the first failed connection, dead after
`give_up_s`, up again at the first answer."""

from __future__ import annotations

from engine_clock import FakeClock

from vault_bmad.engine.endpoints import Endpoints
from vault_bmad.errors import Failure, FailureKind

URL = "http://127.0.0.1:9/v1/chat/completions"
REFUSED = Failure(FailureKind.TRANSIENT, "refused", endpoint=URL, unreachable=True)
BUSY = Failure(FailureKind.TRANSIENT, "HTTP 503", endpoint=URL)


def test_an_endpoint_is_dead_after_give_up_s_without_an_answer() -> None:
    clock = FakeClock()
    start = clock.now
    endpoints = Endpoints(60, clock=clock, wall=lambda: 1000.0 + clock.now - start)
    endpoints.observe(URL, "a", REFUSED)
    clock.advance(30)
    endpoints.observe(URL, "b", REFUSED)
    assert endpoints.dead() == {} and endpoints.next_check() == start + 60
    clock.advance(30)
    assert endpoints.dead() == {URL: ("a", "b")}
    [view] = endpoints.views()
    assert (view.down_since, view.error, view.dead) == (1000.0, "refused", True)
    assert "unreachable for 60 s (llm_give_up_s); the last error: refused" in (
        endpoints.give_up_message(URL)
    )


def test_any_answer_means_the_endpoint_is_up() -> None:
    clock = FakeClock()
    endpoints = Endpoints(60, clock=clock)
    endpoints.observe(URL, "a", REFUSED)
    clock.advance(50)
    endpoints.observe(URL, "a", BUSY)  # an error answer is an answer
    clock.advance(50)
    assert endpoints.dead() == {} and endpoints.next_check() is None
    endpoints.observe(URL, "a", REFUSED)
    clock.advance(59)
    assert endpoints.dead() == {}
    endpoints.observe(URL, "a", None)
    assert endpoints.views()[0].down_since is None
