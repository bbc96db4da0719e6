"""A small pool of long-lived template worker processes (see template_worker.py).

A process starts on first need and is kept for the next job, so a render costs a round
trip through a pipe, not a process start. A job that runs past its deadline has its
process killed (SIGKILL), and the next job starts a fresh one. Each process runs with a
clean environment (no API keys or tokens) and no vault folder on its import path.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from vault_bmad.runtimes.template_worker import FRAME_HEADER, frame

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding vault_bmad/
_READ_CHUNK = 1 << 20
_WORKER_MODULE = "vault_bmad.runtimes.template_worker"


class WorkerOverdue(Exception):
    """The job ran past its deadline; its process was killed."""


class WorkerDied(Exception):
    """The worker process ended before it answered (killed by its CPU or memory limit)."""

    def __init__(self, how: str) -> None:
        super().__init__(how)
        self.how = how


class NoWorkerFree(Exception):
    """Every worker stayed busy until the job's deadline."""


class PoolClosed(Exception):
    """The pool was closed."""


class _Worker:
    def __init__(self, memory_bytes: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-s", "-m", _WORKER_MODULE, str(memory_bytes)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={"PYTHONPATH": _PACKAGE_ROOT, "PATH": os.environ.get("PATH", "")},
            cwd=_PACKAGE_ROOT,
            bufsize=0,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._send, self._receive = self.process.stdin, self.process.stdout

    def ask(self, job: bytes, deadline: float) -> dict[str, Any]:
        try:
            self._send.write(frame(job))
        except (BrokenPipeError, ValueError):
            raise WorkerDied(self._how_it_ended()) from None
        header = self._read(FRAME_HEADER.size, deadline)
        (size,) = FRAME_HEADER.unpack(header)
        answer: dict[str, Any] = json.loads(self._read(size, deadline))
        return answer

    def _read(self, size: int, deadline: float) -> bytes:
        data = bytearray()
        with selectors.DefaultSelector() as selector:
            selector.register(self._receive, selectors.EVENT_READ)
            while len(data) < size:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self.kill()
                    raise WorkerOverdue
                chunk = os.read(self._receive.fileno(), min(size - len(data), _READ_CHUNK))
                if not chunk:
                    raise WorkerDied(self._how_it_ended())
                data += chunk
        return bytes(data)

    def _how_it_ended(self) -> str:
        try:
            code = self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            self.kill()
            return "stopped answering"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"was stopped by {signal.Signals(-code).name}"
        return f"exited with status {code}"

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """Stop the process at once; its pipes stay open for the thread that may read them."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()

    def close(self) -> None:
        self.kill()
        for pipe in (self._send, self._receive):
            pipe.close()


class WorkerPool:
    """At most `size` template worker processes, each limited to `memory_bytes`."""

    def __init__(self, size: int, memory_bytes: int) -> None:
        self.memory_bytes = memory_bytes
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._closed = False

    def ask(self, job: bytes, timeout: float) -> dict[str, Any]:
        """The answer of a worker to `job` within `timeout` seconds, on a worker of its own.

        Raises NoWorkerFree, WorkerOverdue, WorkerDied, PoolClosed, or OSError when no
        process can be started."""
        deadline = time.monotonic() + timeout
        if not self._slots.acquire(timeout=timeout):
            raise NoWorkerFree
        try:
            worker = self._take()
            try:
                answer = worker.ask(job, deadline)
            except BaseException:
                self._drop(worker)
                raise
            if answer.get("restart"):
                self._drop(worker)
            else:
                self._give_back(worker)
            return answer
        finally:
            self._slots.release()

    def close(self) -> None:
        """Kill every worker, busy or idle; later jobs raise PoolClosed. A busy worker's
        pipes are closed by the thread waiting on it, which sees it end."""
        with self._lock:
            self._closed = True
            idle = self._idle
            busy = self._all.difference(idle)
            self._all, self._idle = set(), []
        for worker in idle:
            worker.close()
        for worker in busy:
            worker.kill()

    def _take(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise PoolClosed
            while self._idle:
                worker = self._idle.pop()
                if worker.alive:
                    return worker
                self._all.discard(worker)
                worker.close()
        worker = _Worker(self.memory_bytes)
        with self._lock:
            if self._closed:
                worker.close()
                raise PoolClosed
            self._all.add(worker)
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            if worker in self._all:
                self._idle.append(worker)

    def _drop(self, worker: _Worker) -> None:
        with self._lock:
            self._all.discard(worker)
        worker.close()
