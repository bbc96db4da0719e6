"""Waiting in tests for the condition they assert, with a deadline a loaded CI machine meets.

A test waits for what it checks, never a fixed time: the deadline only bounds how long a
failing test takes, so it is generous (a busy two-core machine can stall a process for
seconds). How fast something happens is measured in benchmarks, not here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

WAIT_S = 60.0  # the longest a test waits for something that should happen
POLL_S = 0.05


def wait_until(
    condition: Callable[[], object], message: str = "timed out waiting", timeout: float = WAIT_S
) -> None:
    """Return once `condition()` is true; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(POLL_S)


class Gate:
    """A loopback LLM server's `latency` that holds every answer until `open` (or WAIT_S):
    a test acts while its tasks are surely running, then lets them end."""

    def __init__(self) -> None:
        self._open = threading.Event()

    def __call__(self) -> float:
        self._open.wait(WAIT_S)
        return 0.0

    def open(self) -> None:
        self._open.set()
