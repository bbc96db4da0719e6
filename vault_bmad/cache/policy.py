"""The admission and eviction policy shared by every cache level.

It is W-TinyLFU (Einziger, Friedman and Manes, 2017) reshaped so that a hit costs one
counter increment and all other work happens on a miss:

- New entries enter a FIFO *window*. Entries leaving it are *candidates* for *main*.
- *Main* is a CLOCK: an entry hit since the hand last passed earns a credit of up to two
  more passes.
- A candidate enters a full main only if a count-min sketch says it is more popular than
  the victim, the least popular of the first few unreferenced entries at the hand. This
  keeps one-hit wonders and long scans from flushing the popular set.
- Hits are banked into the sketch lazily, when the hand passes an entry or it leaves.
- The window's share adapts by ghost gradients (in the spirit of ARC): a miss on a key
  the window recently rejected means a larger window would have hit, and grows it; a miss
  on a key main recently evicted shrinks it. A ghost hit `depth` drops back says the
  other segment would need `depth` more slots to have hit, so its pull fades with depth
  squared past 5% of capacity. Near hits decide (the local gradient); far ones still get
  the window out of a poor spot. It settles where the marginal hits of the two segments
  match: small on frequency-skewed workloads, large on recency-heavy ones.
"""

from __future__ import annotations

import math
import random
from collections import OrderedDict
from collections.abc import Hashable

from vault_bmad.cache.sketch import FrequencySketch

_HASH_FLOOD_FREQUENCY = 6  # candidates this popular are sometimes admitted on a loss
_HASH_FLOOD_ODDS = 1 / 128


class Entry:
    """One stored key with its value, its expiry and the policy's bookkeeping."""

    __slots__ = ("credit", "expires_at", "hits", "key", "key_hash", "value")

    def __init__(
        self, key: Hashable, value: object, key_hash: int, expires_at: float = math.inf
    ) -> None:
        self.key = key
        self.value = value
        self.key_hash = key_hash
        self.expires_at = expires_at
        self.hits = 0  # hits not yet banked into the sketch
        self.credit = 0  # second chances left at the CLOCK hand

    def __repr__(self) -> str:
        return f"Entry({self.key!r}, hits={self.hits})"


class AdaptiveTinyLfu:
    """Decides which entries a bounded store keeps. Not thread-safe: the level locks.

    The store calls `on_miss` when a lookup misses, `insert` to add an entry (it returns
    the entries to drop, possibly including ones inserted earlier), `remove` when an entry
    leaves for another reason, and increments `entry.hits` on every hit.
    """

    def __init__(
        self,
        capacity: int,
        *,
        min_window_share: float = 0.005,
        max_window_share: float = 0.8,
        ghost_share: float = 0.5,
        full_step_share: float = 0.05,
        victim_sample: int = 4,
        max_credit: int = 2,
        seed: int = 0,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {capacity}")
        self._capacity = capacity
        self._window: OrderedDict[Hashable, Entry] = OrderedDict()
        self._main: OrderedDict[Hashable, Entry] = OrderedDict()
        self._sketch = FrequencySketch(capacity, sample_factor=48)
        self._min_window = max(1.0, capacity * min_window_share)
        self._max_window = max(self._min_window, capacity * max_window_share)
        self._window_target = self._min_window
        self._full_step_depth = max(1.0, capacity * full_step_share)
        self._window_ghost = Ghost(max(1, int(capacity * ghost_share)))
        self._main_ghost = Ghost(max(1, int(capacity * ghost_share)))
        self.ghost_hits = 0  # misses on keys a ghost list held: more room would have hit
        self._victim_sample = victim_sample
        self._max_credit = max_credit
        self._random = random.Random(seed)

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return len(self._window) + len(self._main)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._window or key in self._main

    def frequency(self, entry: Entry) -> int:
        """The entry's estimated recent popularity, counting hits not yet banked."""
        return min(15, self._sketch.frequency(entry.key_hash) + entry.hits)

    def on_miss(self, key_hash: int) -> None:
        """Count an access that missed, and move the window by the ghost it hit, if any."""
        self._sketch.add(key_hash)
        depth = self._window_ghost.pop_depth(key_hash)
        if depth is not None:
            self.ghost_hits += 1
            self._window_target = min(self._max_window, self._window_target + self._step(depth))
            return
        depth = self._main_ghost.pop_depth(key_hash)
        if depth is not None:
            self.ghost_hits += 1
            self._window_target = max(self._min_window, self._window_target - self._step(depth))

    def _step(self, depth: int) -> float:
        """How far one ghost hit moves the window: 1 when near, fading with depth squared."""
        return min(1.0, (self._full_step_depth / depth) ** 2)

    def insert(self, entry: Entry) -> list[Entry]:
        """Add a new entry; return the entries the store must drop to stay within capacity."""
        self._window[entry.key] = entry
        dropped: list[Entry] = []
        window_limit = int(self._window_target)
        while len(self._window) > window_limit:
            _, candidate = self._window.popitem(last=False)
            self._offer(candidate, dropped)
        while len(self._window) + len(self._main) > self._capacity:
            victim = self._select_victim()
            del self._main[victim.key]
            self._main_ghost.add(victim.key_hash)
            dropped.append(victim)
        return dropped

    def remove(self, entry: Entry) -> None:
        """Forget an entry that leaves the store (expired or deleted), keeping its popularity."""
        if self._window.pop(entry.key, None) is None:
            self._main.pop(entry.key, None)
        self._bank(entry)

    def clear(self) -> None:
        self._window.clear()
        self._main.clear()

    def _offer(self, candidate: Entry, dropped: list[Entry]) -> None:
        self._bank(candidate)
        if len(self._window) + len(self._main) < self._capacity:
            self._main[candidate.key] = candidate
            return
        if not self._main:
            self._window_ghost.add(candidate.key_hash)
            dropped.append(candidate)
            return
        victim = self._select_victim()
        candidate_frequency = self._sketch.frequency(candidate.key_hash)
        victim_frequency = self._sketch.frequency(victim.key_hash)
        if candidate_frequency > victim_frequency or (
            candidate_frequency >= _HASH_FLOOD_FREQUENCY
            and self._random.random() < _HASH_FLOOD_ODDS
        ):
            del self._main[victim.key]
            self._main_ghost.add(victim.key_hash)
            dropped.append(victim)
            self._main[candidate.key] = candidate
        else:
            self._window_ghost.add(candidate.key_hash)
            dropped.append(candidate)

    def _select_victim(self) -> Entry:
        """Advance the hand past referenced entries; pick the least popular of a few others.

        The candidates stay at the head of main in their order; the caller removes the victim.
        """
        main = self._main
        candidates: list[Entry] = []
        while main and len(candidates) < self._victim_sample:
            key, entry = main.popitem(last=False)
            if entry.hits:
                entry.credit = min(self._max_credit, entry.credit + entry.hits)
                self._bank(entry)
            if entry.credit:
                entry.credit -= 1
                main[key] = entry
            else:
                candidates.append(entry)
        frequency = self._sketch.frequency
        victim = min(candidates, key=lambda entry: frequency(entry.key_hash))
        for entry in reversed(candidates):
            main[entry.key] = entry
            main.move_to_end(entry.key, last=False)
        return victim

    def _bank(self, entry: Entry) -> None:
        if entry.hits:
            self._sketch.add(entry.key_hash, entry.hits)
            entry.hits = 0


class Ghost:
    """Recently dropped key hashes, each with how many drops ago it happened."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._dropped_at: OrderedDict[int, int] = OrderedDict()
        self._drops = 0

    def add(self, key_hash: int) -> None:
        self._drops += 1
        self._dropped_at[key_hash] = self._drops
        self._dropped_at.move_to_end(key_hash)
        if len(self._dropped_at) > self._size:
            self._dropped_at.popitem(last=False)

    def pop_depth(self, key_hash: int) -> int | None:
        """How many drops ago `key_hash` was dropped (1: the latest), forgetting it; or None."""
        dropped_at = self._dropped_at.pop(key_hash, None)
        return None if dropped_at is None else self._drops - dropped_at + 1
