"""One run over a vault, as `vault-bmad run` does it: index, validate, run, report.

It owns the vault's state folder for the run (one process at a time), and wires the
parts together: index, store, runtimes, cache and orchestrator.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Collection, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from vault_bmad.cache.tiered import LevelSpec, TieredCache
from vault_bmad.config import STATE_DB, Settings
from vault_bmad.engine.orchestrator import Orchestrator
from vault_bmad.errors import Problem, VaultBmadError
from vault_bmad.metrics.outcomes import Event, RunSummary
from vault_bmad.metrics.store import Store
from vault_bmad.metrics.usage import NONE, Usage, total, usage
from vault_bmad.model.status import ENDED_WELL, NEEDS_INPUT
from vault_bmad.model.validate import build_definitions
from vault_bmad.reports import write_run_report
from vault_bmad.runtimes.remote import runtimes_for
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.leftovers import remove_leftovers
from vault_bmad.vault.writer import NoteWriter

LOCK_FILE = "lock"
CACHE_DIR = "cache"
EXIT_FAILED = 1  # a task failed, was blocked or is invalid
EXIT_NEEDS_INPUT = 3  # none did, but an agent waits for its user's answers


class VaultBusy(VaultBmadError):
    """Another vault-bmad process is running on this vault."""


@dataclass(frozen=True)
class VaultRunResult:
    """What `run_vault` did: each task's outcome, the notes it marked invalid, its report."""

    summary: RunSummary
    invalid: tuple[str, ...]  # invalid task notes: marked so, or left alone when read-only
    report: str | None  # the run report note written, vault-relative
    problems: tuple[Problem, ...]  # every problem in the vault, task notes or not
    usage: dict[str, Usage] = field(default_factory=dict)  # tokens and cost by task
    spent: Usage = NONE  # tokens and cost of the whole run

    @property
    def exit_code(self) -> int:
        """0 when every task ended well; EXIT_FAILED when one did not; else EXIT_NEEDS_INPUT
        when one waits for its user's answers."""
        stops = {outcome.status for outcome in self.summary.outcomes.values()}
        if self.invalid or stops - ENDED_WELL - {NEEDS_INPUT}:
            return EXIT_FAILED
        return EXIT_NEEDS_INPUT if NEEDS_INPUT in stops else 0


def state_dir(vault: Path, settings: Settings) -> Path:
    folder = vault.resolve() / settings.state_dir
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def vault_lock(folder: Path) -> Iterator[None]:
    """Hold the vault's lock; raises VaultBusy when another process has it."""
    descriptor = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise VaultBusy(
                f"another vault-bmad process is running on this vault (lock: {folder / LOCK_FILE})"
            ) from None
        yield
    finally:
        os.close(descriptor)


def make_cache(settings: Settings, folder: Path) -> TieredCache | None:
    """The multi-level result cache the settings describe; L1 size 0 turns caching off."""
    if settings.cache_l1_size == 0:
        return None
    return TieredCache(
        folder / CACHE_DIR if settings.cache_l3_size else None,
        l1=LevelSpec(settings.cache_l1_size, settings.cache_l1_ttl_s),
        l2=LevelSpec(settings.cache_l2_size, settings.cache_l2_ttl_s)
        if settings.cache_l2_size
        else None,
        l3=LevelSpec(max(1, settings.cache_l3_size), settings.cache_l3_ttl_s),
        prefetch_threshold=settings.prefetch_threshold,
    )


def open_orchestrator(
    vault: Path,
    settings: Settings,
    stack: ExitStack,
    on_event: Callable[[Event], None] | None = None,
    *,
    give_up: bool = False,
) -> Orchestrator:
    """Open what an orchestrator stands on: the runtimes (a Dask scheduler that cannot be
    reached stops it here, before anything is written), then the vault's lock, the store,
    the cache and the index. `stack` closes them all. `give_up`: see Orchestrator."""
    runtimes = runtimes_for(settings, stack)
    for runtime in runtimes.values():
        close = getattr(runtime, "close", None)
        if close is not None:
            stack.callback(close)
    folder = state_dir(vault, settings)
    stack.enter_context(vault_lock(folder))
    remove_leftovers(vault.resolve())
    store = stack.enter_context(Store(folder / STATE_DB))
    cache = make_cache(settings, folder)
    if cache is not None:
        stack.enter_context(cache)
    index = VaultIndex.load(vault)
    return Orchestrator(
        index, settings, store, runtimes, cache=cache, on_event=on_event, give_up=give_up
    )


def run_vault(
    vault: Path,
    settings: Settings,
    on_event: Callable[[Event], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> VaultRunResult:
    """Run every `todo` task of the vault to an end state and write a run report.

    When `stop()` turns true (SIGTERM, Ctrl-C), attempts in flight are dropped and every
    task running or queued goes back to `todo`; the report says which."""
    with ExitStack() as stack:
        orchestrator = open_orchestrator(vault, settings, stack, on_event, give_up=True)
        try:
            definitions, invalid = orchestrator.read_vault()
            to_run = orchestrator.submit(definitions)
            if on_start is not None:
                on_start(to_run)
            summary = orchestrator.run_until_idle(stop)
            orchestrator.sample_cache()
        finally:
            orchestrator.close()
        by_task = usage(orchestrator.store, "task_id", since=summary.started)
        spent = total(orchestrator.store, since=summary.started)
        report = None
        if summary.outcomes or summary.stopped or invalid:
            report = write_run_report(
                orchestrator.notes, summary, definitions, invalid, by_task, spent
            )
        return VaultRunResult(summary, tuple(invalid), report, definitions.problems, by_task, spent)


@dataclass(frozen=True)
class Retried:
    """What `retry_tasks` set back to `todo`, and whether a running `serve` will run them."""

    paths: tuple[str, ...]
    served: bool


def retry_tasks(vault: Path, settings: Settings, statuses: Collection[str]) -> Retried:
    """Set every task note whose status is in `statuses` back to `todo`, as a user would."""
    index = VaultIndex.load(vault)
    tasks = build_definitions(index, None, settings.output_folder).tasks.values()
    paths = sorted({task.path for task in tasks if task.status in statuses})
    writer = NoteWriter(vault.resolve())
    for path in paths:
        writer.update(path, {"status": "todo"}, None)
    return Retried(tuple(paths), _served(vault.resolve() / settings.state_dir))


def _served(folder: Path) -> bool:
    """Whether another process (a `serve`) holds the vault's lock."""
    if not (folder / LOCK_FILE).exists():
        return False
    try:
        with vault_lock(folder):
            return False
    except VaultBusy:
        return True
