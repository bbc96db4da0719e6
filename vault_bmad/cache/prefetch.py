"""Prediction and prefetch: learn which key follows which, and fetch the likely next one early.

When task A's context is read and B's is usually read next, reading A's entry makes the
cache pull B's entry up from a lower level before anyone asks. A prediction fires when its
confidence (the share of A's recent successors that were B) reaches the threshold. The
threshold moves with the outcome: a prefetched entry that gets used lowers it a little, one
dropped unused raises it, so precision settles near `target_precision`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import asdict, dataclass

_NOTHING = object()


@dataclass(frozen=True)
class Prediction:
    key: Hashable
    confidence: float  # share of the observed successors that were `key`
    support: int  # how many successions the confidence rests on


class SuccessorModel:
    """First-order successor counts for the most recently seen keys. Not thread-safe.

    Each key keeps counts for up to `max_successors` followers; counts halve once they
    sum past `decay_at`, so a changed habit wins within a few repetitions.
    """

    def __init__(self, max_keys: int = 10_000, max_successors: int = 4, decay_at: int = 32):
        self._max_keys = max_keys
        self._max_successors = max_successors
        self._decay_at = decay_at
        self._followers: OrderedDict[Hashable, dict[Hashable, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._followers)

    def learn(self, previous: Hashable, current: Hashable) -> None:
        """Record that `current` was requested right after `previous`."""
        counts = self._followers.get(previous)
        if counts is None:
            counts = self._followers[previous] = {}
            if len(self._followers) > self._max_keys:
                self._followers.popitem(last=False)
        else:
            self._followers.move_to_end(previous)
        counts[current] = counts.get(current, 0) + 1
        if len(counts) > self._max_successors:
            weakest = min((key for key in counts if key != current), key=counts.__getitem__)
            del counts[weakest]
        if sum(counts.values()) > self._decay_at:
            for key in list(counts):
                counts[key] //= 2
                if not counts[key]:
                    del counts[key]

    def predict(self, key: Hashable) -> Prediction | None:
        """The most likely successor of `key`, or None if it has none yet."""
        counts = self._followers.get(key)
        if not counts:
            return None
        best = max(counts, key=counts.__getitem__)
        total = sum(counts.values())
        return Prediction(best, counts[best] / total, total)


@dataclass(frozen=True)
class PrefetchStats:
    issued: int  # entries brought forward
    used: int  # of those, requested before they left
    wasted: int  # of those, dropped unused
    threshold: float

    @property
    def precision(self) -> float:
        return self.used / self.issued if self.issued else 0.0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "precision": self.precision}


class Prefetcher:
    """Watches the request stream, proposes keys to prefetch, and learns from the outcome.

    The cache calls `observe` on every request, `issued` for each proposed key it did
    fetch, `on_hit` on every hit of its fast level and `on_evict` when that level drops
    an entry. Thread-safe.
    """

    def __init__(
        self,
        threshold: float = 0.7,
        *,
        min_threshold: float = 0.5,
        max_threshold: float = 0.98,
        target_precision: float = 0.75,
        step: float = 0.01,
        min_support: int = 2,
        max_keys: int = 10_000,
        max_pending: int = 1_000,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], not {threshold}")
        self._threshold = threshold
        self._min_threshold = min(min_threshold, threshold)
        self._max_threshold = max(max_threshold, threshold)
        self._step_down = step * (1 - target_precision)
        self._step_up = step * target_precision
        self._min_support = min_support
        self._model = SuccessorModel(max_keys)
        self._pending: OrderedDict[Hashable, None] = OrderedDict()
        self._max_pending = max_pending
        self._previous: object = _NOTHING
        self._lock = threading.Lock()
        self._issued = 0
        self._used = 0
        self._wasted = 0

    @property
    def threshold(self) -> float:
        return self._threshold

    def observe(self, key: Hashable) -> list[Hashable]:
        """Learn from the request for `key`; return the keys worth prefetching now."""
        with self._lock:
            previous, self._previous = self._previous, key
            if previous is not _NOTHING and previous != key:
                self._model.learn(previous, key)
            prediction = self._model.predict(key)
            if (
                prediction is None
                or prediction.support < self._min_support
                or prediction.confidence < self._threshold
                or prediction.key in self._pending
            ):
                return []
            return [prediction.key]

    def issued(self, key: Hashable) -> None:
        with self._lock:
            self._issued += 1
            self._pending[key] = None
            if len(self._pending) > self._max_pending:
                self._pending.popitem(last=False)
                self._record_waste()

    def on_hit(self, key: Hashable) -> bool:
        """Note a hit; True if it was the first use of a prefetched entry."""
        with self._lock:
            if self._pending.pop(key, _NOTHING) is _NOTHING:
                return False
            self._used += 1
            self._threshold = max(self._min_threshold, self._threshold - self._step_down)
            return True

    def on_evict(self, key: Hashable) -> None:
        with self._lock:
            if self._pending.pop(key, _NOTHING) is not _NOTHING:
                self._record_waste()

    def stats(self) -> PrefetchStats:
        with self._lock:
            return PrefetchStats(self._issued, self._used, self._wasted, self._threshold)

    def _record_waste(self) -> None:
        self._wasted += 1
        self._threshold = min(self._max_threshold, self._threshold + self._step_up)
