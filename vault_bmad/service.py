"""`vault-bmad serve`: the watcher, the orchestrator and the web server in one process.

Threads: watchdog's observer and the watcher's flusher hand batches of changes to a
queue; one engine thread owns the index, the orchestrator and every vault write; the
web server's threads read only the engine's latest snapshot and the store.
"""

from __future__ import annotations

import errno
import logging
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Literal

from werkzeug.serving import (
    BaseWSGIServer,
    WSGIRequestHandler,
    get_sockaddr,
    make_server,
    select_address_family,
)

from vault_bmad.cache.tiered import TieredCache, TieredStats
from vault_bmad.config import Settings
from vault_bmad.engine.orchestrator import STOP_GRACE_S, Orchestrator
from vault_bmad.engine.snapshot import EngineSnapshot, take_snapshot
from vault_bmad.errors import ConfigError, SetupError, VaultBmadError
from vault_bmad.metrics.outcomes import Event
from vault_bmad.metrics.report import Period, ReportSchedule, report_from_store
from vault_bmad.metrics.usage import Usage, usage
from vault_bmad.model.status import PENDING
from vault_bmad.runner import open_orchestrator
from vault_bmad.vault.changes import VaultChange
from vault_bmad.vault.watcher import VaultWatcher, apply_to_index
from vault_bmad.web.app import create_app
from vault_bmad.web.prometheus import ServiceMetrics

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_ENGINE_WAIT_S = 0.05
REFRESH_EVERY_S = 1.0  # a fresh snapshot even when nothing happened (health decays, clocks)
PUBLISH_EVERY_S = 0.1  # at most this often after changes: a snapshot costs O(tasks)
SAMPLE_EVERY_S = 10.0  # cache and pool samples, for charts over time
RERUN_ANSWER_S = 5.0  # how long the web thread waits for the engine to take a re-run
ServiceEvent = Literal["serving", "stopping", "stopped"]  # what `Service.run` tells


class QuietRequests(WSGIRequestHandler):
    """Logs only requests that went wrong: the dashboard polls every two seconds, and a
    line per poll would drown the task progress `serve` prints."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if str(code)[:1] in ("4", "5"):
            super().log_request(code, size)


class ServeError(SetupError):
    """The service could not start: its port is taken, its state folder cannot be written..."""


def check_bind(host: str, token: str | None) -> None:
    """Refuse to expose the dashboard beyond this machine without a token."""
    if host not in LOOPBACK_HOSTS and not token:
        raise ConfigError(
            f"serving on {host} makes the dashboard reachable from other machines; "
            "set a token first (VAULT_BMAD_TOKEN, or `token` in your config file)"
        )


@contextmanager
def _bound(host: str, port: int) -> Iterator[socket.socket]:
    """A socket listening on the dashboard's address; ServeError when it cannot."""
    family = select_address_family(host, port)
    listening = socket.socket(family, socket.SOCK_STREAM)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(get_sockaddr(host, port, family))
        listening.listen(socket.SOMAXCONN)
    except OSError as exc:
        listening.close()
        reason = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror or exc
        raise ServeError(f"cannot serve the dashboard on {host}:{port}: {reason}") from None
    with listening:
        yield listening


def _not_yet(environ: object, start_response: Callable[..., object]) -> list[bytes]:
    """The web server's app until the vault is open (never served: nothing listens yet)."""
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


class Service:
    """One vault, served: start() brings everything up, stop() takes it down in order."""

    def __init__(
        self, vault: Path, settings: Settings, on_event: Callable[[Event], None] | None = None
    ) -> None:
        check_bind(settings.host, settings.token)
        self.vault = vault.resolve()
        self.settings = settings
        self.started_at = time.time()
        self._stack = ExitStack()
        self._changes: queue.SimpleQueue[list[VaultChange]] = queue.SimpleQueue()
        self._requests: queue.SimpleQueue[tuple[Callable[[], object], Future[object]]] = (
            queue.SimpleQueue()
        )
        self._stopping = threading.Event()
        self._snapshot = EngineSnapshot(at=self.started_at)
        self._engine_thread: threading.Thread | None = None
        self._web_thread: threading.Thread | None = None
        self._server: BaseWSGIServer | None = None
        self.metrics = ServiceMetrics(self.snapshot, self._cache_by_level, self._usage_by_agent)
        self._listener = on_event or (lambda event: None)  # e.g. the progress lines
        self._next_sample = 0.0
        self._dirty = True  # the engine changed something the snapshot does not show yet
        self.unfinished: list[str] = []
        self._engine_error: str | None = None  # why the last engine step failed, if it did
        self.watcher: VaultWatcher | None = None
        self.orchestrator: Orchestrator | None = None

    # Start and stop.

    def start(self) -> None:
        """Bind the dashboard's port first, so a port in use stops it before anything is
        written; then open the vault and start the watcher, the engine and the web threads."""
        host, port = self.settings.host, self.settings.port
        with _bound(host, port) as listening:  # the app comes once the vault is open
            self._server = make_server(
                host,
                port,
                _not_yet,
                threaded=True,
                fd=listening.fileno(),
                request_handler=QuietRequests,
            )
        self.orchestrator = orchestrator = open_orchestrator(
            self.vault, self.settings, self._stack, self._on_event
        )
        self.store, self.index = orchestrator.store, orchestrator.index
        self.reports = ReportSchedule(self.settings.report_interval_s)
        definitions, _ = orchestrator.read_vault()
        orchestrator.submit(definitions)
        self._publish()
        self.watcher = VaultWatcher(
            self.vault,
            self._changes.put,
            debounce_s=self.settings.debounce_ms / 1000,
            is_own_write=orchestrator.notes.writer.wrote_last,
        )
        self.watcher.start()
        self._engine_thread = threading.Thread(
            target=self._engine_loop, name="vault-bmad-engine", daemon=True
        )
        self._engine_thread.start()
        self._server.app = create_app(self, self.settings.token or None)
        self._web_thread = threading.Thread(
            target=self._server.serve_forever, name="vault-bmad-web", daemon=True
        )
        self._web_thread.start()

    @property
    def url(self) -> str:
        port = self._server.port if self._server else self.settings.port
        host = self.settings.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def run(self, tell: Callable[[ServiceEvent], None] = lambda event: None) -> None:
        """Serve until SIGTERM or SIGINT, then stop: the whole life of `vault-bmad serve`.

        `tell` hears "serving" once the dashboard is up, "stopping" when a signal came, and
        "stopped" when running tasks have had STOP_GRACE_S to finish, the rest and the queued
        ones are back to todo (`unfinished`) and the final report is written. Call it from
        the main thread, which receives the signals. When the service cannot start, it
        raises, having stopped.
        """
        stop_requested = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop_requested.set())
        try:
            self.start()
        except VaultBmadError:
            self.stop()
            raise
        except OSError as exc:
            self.stop()
            raise ServeError(str(exc)) from exc
        tell("serving")
        while not stop_requested.wait(0.5):
            pass
        tell("stopping")
        self.stop()
        tell("stopped")

    def stop(self) -> None:
        """Stop watching, let running tasks finish briefly, put the rest and the queued ones
        back to todo, flush state, close the server.

        Safe after a start() that failed part way, and safe to call twice."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self.watcher is not None:
            self.watcher.stop()
        if self._engine_thread is not None:
            self._engine_thread.join()
        if self.orchestrator is not None:
            self.unfinished = self.orchestrator.drain(STOP_GRACE_S)
            self.orchestrator.close()
            self._publish()
            self.orchestrator.sample_cache()
            self._write_report(self.reports.at_shutdown())
        if self._server is not None:
            if self._web_thread is not None:
                self._server.shutdown()
            self._server.server_close()
        self._stack.close()

    # The engine thread.

    def _engine_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._answer_requests()
                self._apply_changes()
                assert self.orchestrator is not None
                self.orchestrator.step(max_wait=_ENGINE_WAIT_S)
                age = time.time() - self._snapshot.at
                if age >= REFRESH_EVERY_S or (self._dirty and age >= PUBLISH_EVERY_S):
                    self._publish()
                self._housekeeping()
                self._engine_error = None
                if not self.orchestrator.scheduler.pending():  # step() waits only on work
                    self._stopping.wait(_ENGINE_WAIT_S)
            except Exception as exc:  # the service stays up whatever one step did
                log.exception("engine step failed")
                self._engine_error = f"a step failed: {type(exc).__name__}: {exc}"
                time.sleep(_ENGINE_WAIT_S)

    def _answer_requests(self) -> None:
        """Do what web threads asked of the engine (`_on_engine`), on the engine's thread."""
        while True:
            try:
                work, answer = self._requests.get_nowait()
            except queue.Empty:
                return
            if not answer.set_running_or_notify_cancel():
                continue  # the web thread stopped waiting
            try:
                answer.set_result(work())
            except Exception as exc:
                answer.set_exception(exc)
                raise

    def _rerun_now(self, task_ids: Iterable[str]) -> list[str]:
        """Set each task that has ended back to `todo`, as a user would; returns those set.
        Decided on the engine's live state, not on a snapshot that may lag it."""
        assert self.orchestrator is not None
        scheduler = self.orchestrator.scheduler
        done = []
        for task_id in task_ids:
            task = self.orchestrator.definitions.tasks.get(task_id)
            if task is None or (scheduler.knows(task_id) and scheduler.phase(task_id) in PENDING):
                continue
            try:
                self.orchestrator.notes.set_todo(task)
            except (VaultBmadError, OSError) as exc:
                log.warning("could not set %s back to todo: %s", task.path, exc)
                continue
            self._changes.put([VaultChange("changed", task.path)])  # own writes are skipped
            done.append(task_id)
        return done

    def _ended_as(self, statuses: Collection[str]) -> list[str]:
        """The tasks whose run ended in one of `statuses` (failed, blocked), by id."""
        assert self.orchestrator is not None
        scheduler = self.orchestrator.scheduler
        return [
            task.id
            for task in self.orchestrator.definitions.tasks.values()
            if task.step is None
            and (scheduler.phase(task.id) if scheduler.knows(task.id) else task.status) in statuses
        ]

    def _apply_changes(self) -> None:
        batch: list[VaultChange] = []
        while True:
            try:
                batch += self._changes.get_nowait()
            except queue.Empty:
                break
        if not batch:
            return
        assert self.orchestrator is not None
        apply_to_index(self.index, batch)
        self._dirty = True
        touched = {change.path for change in batch}
        definitions, _ = self.orchestrator.read_vault(touched)
        self.orchestrator.refresh(definitions, touched)

    def _housekeeping(self) -> None:
        """Sample the cache and pool now and then; write each interval's report once."""
        assert self.orchestrator is not None
        now = time.time()
        if now >= self._next_sample:
            self._next_sample = now + SAMPLE_EVERY_S
            self.orchestrator.sample_cache()
            self.orchestrator.sample_pool()
        if (period := self.reports.due()) is not None:
            self._write_report(period)

    def _write_report(self, period: Period) -> None:
        assert self.orchestrator is not None
        try:
            self.store.flush()
            written = report_from_store(
                self.store,
                self.orchestrator.definitions,
                self.orchestrator.notes.writer,
                period,
                now=time.time(),
            )
        except Exception as exc:  # a damaged store, a vault gone: the service goes on
            log.warning("could not write the report for %s: %s", period, exc)
            return
        self.index.update(written.path)

    def _cache_by_level(self) -> dict[str, dict[str, int]]:
        stats = self.cache_stats()
        return stats.by_level() if stats is not None else {}

    def _usage_by_agent(self) -> dict[str, Usage]:
        return usage(self.store, "agent") if self.orchestrator is not None else {}

    def _publish(self) -> None:
        if self.orchestrator is not None:
            self._dirty = False
            self._snapshot = take_snapshot(self.orchestrator, time.time())

    def _on_event(self, event: Event) -> None:
        self._dirty = True
        self.metrics.observe(event)
        self._listener(event)

    # What the web app reads.

    def broken(self) -> dict[str, str]:
        """Each part of the service that is not working now, with why."""
        found: dict[str, str] = {}
        if self.orchestrator is not None and (problem := self.store.check()) is not None:
            found["store"] = problem
        if self.watcher is not None and self.watcher.problem is not None:
            found["watcher"] = self.watcher.problem
        engine = self._engine_thread
        if engine is not None and not engine.is_alive() and not self._stopping.is_set():
            found["engine"] = "the engine thread has stopped"
        elif self._engine_error is not None:
            found["engine"] = self._engine_error
        return found

    def snapshot(self) -> EngineSnapshot:
        return self._snapshot

    def metrics_text(self) -> bytes:
        return self.metrics.exposition()

    def cache_stats(self) -> TieredStats | None:
        """The result cache's live counters, when the engine runs with a tiered cache."""
        cache = self.orchestrator.cache if self.orchestrator is not None else None
        return cache.stats() if isinstance(cache, TieredCache) else None

    # What the web app asks for.

    def rerun(self, task_id: str) -> bool:
        """Set the task's note back to `status: todo`, as a user would, and tell the engine;
        the tasks its failure blocked wait for it again. False when the task is unknown,
        queued or running now, its note cannot be written, or the engine is not running."""
        return self._on_engine(lambda: self._rerun_now([task_id])) == [task_id]

    def retry(self, statuses: Collection[str]) -> list[str]:
        """Rerun every task that ended in one of `statuses`; returns their ids."""
        found = self._on_engine(lambda: self._rerun_now(self._ended_as(statuses)))
        return found if isinstance(found, list) else []

    def _on_engine(self, work: Callable[[], object]) -> object:
        """`work()` done by the engine thread, as every vault write is; None when the engine
        is not running or did not take it in time."""
        engine = self._engine_thread
        if engine is None or not engine.is_alive() or self._stopping.is_set():
            return None
        answer: Future[object] = Future()
        self._requests.put((work, answer))
        try:
            return answer.result(timeout=RERUN_ANSWER_S)
        except TimeoutError:
            return None if answer.cancel() else answer.result()
