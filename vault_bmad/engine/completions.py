"""Futures that report to one waiting thread as they end, in the order they end."""

from __future__ import annotations

import queue
from concurrent.futures import Future
from typing import Any


class Completions:
    """`watch` futures on any thread; `wait` for the ones that ended on the loop's."""

    def __init__(self) -> None:
        self._ended: queue.SimpleQueue[Future[Any]] = queue.SimpleQueue()

    def watch(self, future: Future[Any]) -> None:
        """Have `future` report when it ends (at once, if it has)."""
        future.add_done_callback(self._ended.put)

    def wait(self, timeout: float) -> list[Future[Any]]:
        """The futures that ended since the last call, waiting up to `timeout` for one."""
        try:
            ended = [self._ended.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                ended.append(self._ended.get_nowait())
            except queue.Empty:
                return ended
