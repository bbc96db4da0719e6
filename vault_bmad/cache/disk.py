"""L3: a bounded, persistent cache level on diskcache (SQLite plus files) in a given folder.

The cache is disposable: a folder diskcache cannot open or list (a damaged `cache.db`)
is moved aside to `<folder>.damaged` (replacing an older one), with a warning, and the
level starts empty. A failure while running (the folder deleted, the file damaged)
never fails a caller: the operation reads as a miss, a warning tells once, and the level
starts empty again as soon as its parent folder is there to hold it.

A folder that does not exist yet holds nothing, so it is made and opened on a thread of its
own (diskcache takes 50-60 ms to set up a new one): until then a read is a miss, and a
write, `clear` or `close` waits for it. An existing folder is opened at once.
"""

from __future__ import annotations

import contextlib
import logging
import math
import pickle
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import diskcache

from vault_bmad.cache.level import CacheLevel
from vault_bmad.cache.policy import Entry
from vault_bmad.cache.sketch import spread_hash

_MISSING = object()
_DAMAGED_SUFFIX = ".damaged"
_FAILURES = (sqlite3.Error, OSError, pickle.UnpicklingError, diskcache.Timeout)
_logger = logging.getLogger(__name__)
_T = TypeVar("_T")


class DiskCache(CacheLevel):
    """Values live on disk; the policy's bookkeeping (keys only) lives in memory.

    Each value is stored with its expiry time, measured by `clock`, which defaults to
    wall time because entries outlive the process. On opening, the keys already on disk
    are handed to the policy again (their popularity starts afresh). Values must be
    picklable. All operations hold one lock, so the policy and the disk agree.
    """

    _store: diskcache.Cache | None  # None until opened

    def __init__(
        self,
        directory: Path | str,
        capacity: int = 100_000,
        ttl: float | None = 86_400.0,
        *,
        name: str = "disk",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(name, capacity, ttl, clock)
        self.directory = Path(directory)
        self._failed: BaseException | None = None  # why the disk failed, until set up again
        self._store = None
        self._opened = threading.Event()
        self._opener: threading.Thread | None = None
        if self.directory.exists():
            self._open_store()
        else:
            self._opener = threading.Thread(
                target=self._open_in_background, name="vault-bmad-l3-open"
            )
            self._opener.start()

    def _open_store(self) -> None:
        """Open the folder (afresh if it is damaged) and track the keys it holds."""
        try:
            store, keys = _open(self.directory)
        except (sqlite3.DatabaseError, pickle.UnpicklingError) as error:
            store, keys = self._open_afresh(error)
        with self._lock:
            self._store = store
            for key in keys:
                self._track(key, math.nan)  # expiry unknown until read
        self._opened.set()

    def _open_in_background(self) -> None:
        try:
            self._open_store()
        except _FAILURES as error:
            _logger.warning("the disk cache %s could not be opened: %s", self.directory, error)
            with self._lock:
                self._failed = error  # the next operation mends it, as any failure
        finally:
            self._opened.set()  # never leaves a writer waiting

    def get(self, key: Hashable, default: object = None) -> object:
        with self._lock:
            value = self._safely(lambda: self._read_live(key), _MISSING)
            if value is _MISSING:
                self._misses += 1
                self._policy.on_miss(spread_hash(key))
                return default
            self._hits += 1
            self._entries[key].hits += 1
            return value

    def peek(self, key: Hashable, default: object = None) -> object:
        with self._lock:
            value = self._safely(lambda: self._read_live(key), _MISSING)
            return default if value is _MISSING else value

    def set(self, key: Hashable, value: object, ttl: float | None = None) -> None:
        self._opened.wait()
        with self._lock:
            self._safely(lambda: self._set(key, value, ttl, self._clock()), None)

    def set_many(self, items: Iterable[tuple[Hashable, object, float | None, float]]) -> None:
        """`set` each (key, value, ttl, when it was set by `clock`) in one disk transaction,
        far cheaper than one each; the TTL runs from when it was set."""
        self._opened.wait()
        with self._lock:
            self._safely(lambda: self._set_all(items), None)

    def _set_all(self, items: Iterable[tuple[Hashable, object, float | None, float]]) -> None:
        with self._disk.transact():
            for key, value, ttl, at in items:
                self._set(key, value, ttl, at)

    def _set(self, key: Hashable, value: object, ttl: float | None, at: float) -> None:
        expires_at = self._expires_at(ttl, at)
        self._disk.set(key, (expires_at, value))
        entry = self._entries.get(key)
        if entry is None:
            self._track(key, expires_at)
        else:
            entry.expires_at = expires_at

    def delete(self, key: Hashable) -> bool:
        with self._lock:
            return self._safely(lambda: self._delete(key), False)

    def _delete(self, key: Hashable) -> bool:
        live = self._read_live(key) is not _MISSING
        entry = self._entries.get(key)
        if entry is not None:
            self._forget(entry)
        else:
            self._disk.delete(key)
        return live

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return self._safely(lambda: self._read_live(key) is not _MISSING, False)

    def expire(self) -> int:
        with self._lock:
            before = self._expirations
            for key in list(self._entries):
                if key in self._entries:  # a failure on the way empties the level
                    self._safely(partial(self._read_live, key), _MISSING)
            return self._expirations - before

    def clear(self) -> None:
        self._opened.wait()
        super().clear()

    def close(self) -> None:
        if self._opener is not None:
            self._opener.join()
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> DiskCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _read_live(self, key: Hashable) -> object:
        """The stored value if present and unexpired, else _MISSING; drops what expired."""
        entry = self._entries.get(key)
        if entry is not None and entry.expires_at <= self._clock():
            self._drop_expired(entry)
            return _MISSING
        stored = self._disk.get(key, default=_MISSING)
        if not (isinstance(stored, tuple) and len(stored) == 2):
            if stored is not _MISSING:  # not written by this class: not ours to serve
                self._disk.delete(key)
            if entry is not None:  # removed behind our back, by another process
                self._forget(entry)
            return _MISSING
        expires_at, value = stored
        if entry is None:  # written by another process
            entry = self._track(key, expires_at)
        else:
            entry.expires_at = expires_at
        if expires_at <= self._clock():
            self._drop_expired(entry)
            return _MISSING
        return value

    def _track(self, key: Hashable, expires_at: float) -> Entry:
        entry = Entry(key, None, spread_hash(key), expires_at)
        self._admit(entry, self._clock())
        return entry

    def _discard(self, key: Hashable) -> None:
        try:
            self._disk.delete(key)
        except _FAILURES as error:  # mid-way through the policy's work: mended later
            self._failed = self._failed or error

    def _discard_all(self) -> None:
        try:
            self._disk.clear()
        except _FAILURES as error:
            self._failed = self._failed or error

    def _safely(self, operation: Callable[[], _T], fallback: _T) -> _T:
        """`operation` on the disk; if the disk fails, `fallback`, and the level is set up
        afresh once its folder's parent is there; `fallback` too while a new folder is
        still being opened. Lock held."""
        if self._failed is not None and not self._mend():
            return fallback
        if self._store is None:
            return fallback
        try:
            return operation()
        except _FAILURES as error:
            _logger.warning("the disk cache %s failed: %s", self.directory, error)
            self._failed = error
            self._mend()
            return fallback

    def _mend(self) -> bool:
        """Set the level up afresh after a failure, if its folder's parent is there (a
        vault folder deleted is not made again here); True when it is usable."""
        if not self.directory.parent.is_dir():
            return False
        with contextlib.suppress(*_FAILURES):
            if self._store is not None:
                self._store.close()
        self._entries.clear()
        self._policy.clear()
        try:
            self._store, _ = self._open_afresh(self._failed)
        except _FAILURES:
            return False
        self._failed = None
        return True

    @property
    def _disk(self) -> diskcache.Cache:
        """The open store: only reached through `_safely` or an entry it tracks."""
        assert self._store is not None
        return self._store

    def _open_afresh(self, error: BaseException | None) -> tuple[diskcache.Cache, list[Hashable]]:
        """An empty diskcache in the folder, what was there moved aside, with a warning."""
        aside = self.directory.with_name(self.directory.name + _DAMAGED_SUFFIX)
        if self.directory.exists():
            shutil.rmtree(aside, ignore_errors=True)
            self.directory.rename(aside)
            _logger.warning(
                "the disk cache %s could not be read (%s); moved aside to %s, starting empty",
                self.directory,
                error,
                aside,
            )
        else:
            _logger.warning("the disk cache %s was gone; starting it empty", self.directory)
        return _open(self.directory)


def _open(directory: Path) -> tuple[diskcache.Cache, list[Hashable]]:
    """The diskcache in `directory` and the keys it holds; closed again if they cannot be
    listed."""
    store = diskcache.Cache(str(directory), eviction_policy="none")
    try:
        return store, list(store.iterkeys())
    except BaseException:
        store.close()
        raise
