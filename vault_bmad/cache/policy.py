"""The admission and eviction policy shared by every cache level.

It is W-TinyLFU (Einziger, Friedman and Manes, 2017) reshaped so that a hit costs one
counter increment and all other work happens on a miss:

- New entries enter a FIFO *window*. Entries leaving it are *candidates* for *main*.
- *Main* is a CLOCK: an entry hit since the hand last passed earns a credit of up to two
  more passes.
- A candidate enters a full main only if a count-min sketch says it is more popular than
  the victim, the least popular of the first few unreferenced entries at the hand. This
  keeps one-hit wonders and long scans from flushing the popular set. Ties favour the
  resident, and so does a lead within the counting lag while the window sits at its
  floor and the residents kept so were asked for again (see `_admits`), so a working
  set cycled through a cache a little too small for it (a loop) keeps a stable part
  cached instead of churning. A flooded sketch (more
  keys than counters, see `FrequencySketch.flooded`) cannot rank keys; only then are
  popular candidates let in now and then on a loss.
- An entry the hand holds unhit loses its count with the wait (`_least_held`): one that
  earned a full count and is then never asked for again (a note's result before the note
  changed) would otherwise hold the hand until the sketch halves, refusing every
  candidate, while more such entries pile up behind it.
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

from vault_bmad.cache.sketch import MAX_COUNT, FrequencySketch

_HASH_FLOOD_FREQUENCY = 6  # in a flooded sketch, candidates this popular may win a loss
_HASH_FLOOD_ODDS = 1 / 128
_LAG_SHARE = 4  # at the window's floor, a lead of at most 1/4 of the victim's count is lag
_FLOOR_SPAN = 1.5  # the window counts as at its floor below 1.5 times its minimum
_LAG_PAID = 16  # the margin's record gains 16 for a resident it kept that was hit next
_LAG_RECORD = 64  # and loses 1 for one a clear lead evicted unhit, within +-64
_LAG_PROBE = 32  # with the record below zero, 1 disputed duel in 32 still applies it
_NOISY_FREE_SHARE = 0.25  # below this share of a row at zero, counts are mostly collisions
_IDLE_SPAN = 12  # a held entry counts at most 12 x capacity / the misses it waited unhit,
_HELD_FLOOR = 3  # but never below 3


class Entry:
    """One stored key with its value, its expiry and the policy's bookkeeping."""

    __slots__ = (
        "admitted",
        "credit",
        "expires_at",
        "held_since",
        "hits",
        "key",
        "key_hash",
        "promoted",
        "restored",
        "value",
    )

    def __init__(
        self,
        key: Hashable,
        value: object,
        key_hash: int,
        expires_at: float = math.inf,
        *,
        restored: bool = False,
    ) -> None:
        self.key = key
        self.value = value
        self.key_hash = key_hash
        self.expires_at = expires_at
        self.hits = 0  # hits not yet banked into the sketch
        self.credit = 0  # second chances left at the CLOCK hand
        self.held_since = 0  # the policy's miss count when the hand took it unhit
        self.restored = restored  # a copy given back after the store dropped it (`_refuse`)
        self.admitted = False  # it has been in main: it won admission here
        self.promoted = False  # a level below held it before a hit moved it up (`TieredCache`)

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
        self._misses = 0
        self._idle_span = _IDLE_SPAN * capacity
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
        # Unreferenced entries the hand looked at and left in place: the head of main,
        # kept apart so a lost duel moves nothing (`_select_victim`), with the sketch's
        # count of each when it was looked at, taken again after the sketch halves.
        self._hand: list[Entry] = []
        self._hand_counts: list[int] = []
        self._hand_halvings = 0
        self._dropped: list[Entry] = []  # what `insert` returns, one list for every call
        # Key hashes of the residents the lag margin kept, until hit or evicted; what they
        # did next (`_admits`); how many duels the margin decided.
        self._kept: set[int] = set()
        self._lag_record = _LAG_PAID
        self._disputes = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return len(self._window) + len(self._main) + len(self._hand)

    def __contains__(self, key: Hashable) -> bool:
        return (
            key in self._window
            or key in self._main
            or any(entry.key == key for entry in self._hand)
        )

    @property
    def lag_margin(self) -> bool:
        """Whether a lead within the counting lag keeps the resident (`_admits`): while
        the margin's record is not below zero, or the sketch's counts are mostly noise."""
        return self._lag_record >= 0 or self._sketch.free_share < _NOISY_FREE_SHARE

    def frequency(self, entry: Entry) -> int:
        """The entry's estimated recent popularity, counting hits not yet banked."""
        return min(MAX_COUNT, self._sketch.frequency(entry.key_hash) + entry.hits)

    def on_miss(self, key_hash: int) -> None:
        """Count an access that missed, and move the window by the ghost it hit, if any."""
        self._misses += 1
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
        """Add a new entry; return the entries the store must drop to stay within capacity.

        The list is the policy's own, reused by the next call: read it before that.
        """
        self._window[entry.key] = entry
        dropped = self._dropped
        dropped.clear()
        window_limit = int(self._window_target)
        while len(self._window) > window_limit:
            _, candidate = self._window.popitem(last=False)
            self._offer(candidate, dropped)
        while len(self._window) + len(self._main) + len(self._hand) > self._capacity:
            victim, _ = self._select_victim()
            self._evict(victim, dropped)
        return dropped

    def readmit(self, entry: Entry) -> list[Entry]:
        """Add an entry straight to main, past the window and the duel: one that won
        admission here before a hit moved it up a level, and won it up there too
        (`TieredCache`, exclusive). Return the entries to drop, as `insert` does."""
        dropped = self._dropped
        dropped.clear()
        entry.admitted = True
        self._main[entry.key] = entry
        while len(self._window) + len(self._main) + len(self._hand) > self._capacity:
            victim, _ = self._select_victim()
            self._evict(victim, dropped)
        return dropped

    def remove(self, entry: Entry) -> None:
        """Forget an entry that leaves the store (expired or deleted), keeping its popularity."""
        if self._window.pop(entry.key, None) is None and self._main.pop(entry.key, None) is None:
            self._keep_in_hand([held for held in self._hand if held is not entry])
            self._kept.discard(entry.key_hash)
        self._bank(entry)

    def clear(self) -> None:
        self._window.clear()
        self._main.clear()
        self._keep_in_hand([])
        self._kept.clear()

    def _offer(self, candidate: Entry, dropped: list[Entry]) -> None:
        if candidate.hits:
            self._bank(candidate)
        if len(self._window) + len(self._main) + len(self._hand) < self._capacity:
            candidate.admitted = True
            self._main[candidate.key] = candidate
            return
        if not self._main and not self._hand:
            self._refuse(candidate, dropped)
            return
        victim, victim_frequency = self._select_victim()
        if self._admits(self._sketch.frequency(candidate.key_hash), victim_frequency, victim):
            self._evict(victim, dropped)
            candidate.admitted = True
            self._main[candidate.key] = candidate
        else:
            self._refuse(candidate, dropped)

    def _refuse(self, candidate: Entry, dropped: list[Entry]) -> None:
        """Drop a candidate that lost its duel, remembering a new one in the window's ghost.

        A restored entry (an L2 copy given back when L1 lets the key go, see `TieredCache`)
        had its turn in the window when it was new; losing its second chance says nothing
        about the window's size, so it leaves no ghost to grow the window by.
        """
        if not candidate.restored:
            self._window_ghost.add(candidate.key_hash)
        dropped.append(candidate)

    def _admits(self, candidate: int, victim: int, victim_entry: Entry) -> bool:
        """Whether a candidate with this sketch count takes the victim's place.

        A candidate was counted when it missed just now, while a resident waiting at the
        hand has its next count still to come: keys recurring at one rate differ by that
        lag. So while the window sits at its floor (frequency pays, by the ghosts), a lead
        up to a quarter of the victim's count is a tie, and ties keep the resident. Once
        the window has grown (recency pays), any lead admits the fresher key.

        Whether that margin pays is learned from the residents it kept: one hit next (a
        loop's, whose turn comes within the loop) adds `_LAG_PAID` to its record, one a
        clear lead evicted unhit (Zipf's, whose counts of 4 and 5 are true rates, not lag)
        takes 1 off. Below zero the margin applies only to one disputed duel in
        `_LAG_PROBE`, so the record keeps learning; on a noisy sketch, where it filters
        collisions' counts, always.
        """
        lead = candidate - victim
        if lead > victim // _LAG_SHARE:
            if self._kept and victim_entry.key_hash in self._kept:
                self._lag_record = max(-_LAG_RECORD, self._lag_record - 1)
            return True
        if lead > 0:
            if self._window_target >= _FLOOR_SPAN * self._min_window:
                return True
            self._disputes += 1
            if self._disputes % _LAG_PROBE and not self.lag_margin:
                return True
            self._kept.add(victim_entry.key_hash)
        return (
            candidate >= _HASH_FLOOD_FREQUENCY
            and self._sketch.flooded
            and self._random.random() < _HASH_FLOOD_ODDS
        )

    def _select_victim(self) -> tuple[Entry, int]:
        """The least popular of the first few unreferenced entries at the hand, and its count
        (capped by its wait, `_least_held`).

        The hand moves referenced entries to the tail (a hit earns a credit of up to
        `max_credit` passes) and holds the unreferenced ones it looked at in `_hand`, in
        order, so a duel the victim wins moves nothing. Lock held by the level.
        """
        main, sketch = self._main, self._sketch
        for entry in self._hand:
            if entry.hits:  # hit while held: referenced after all
                for held in self._hand:
                    if held.hits:
                        self._pass(held)
                        if held.key_hash in self._kept:
                            self._kept.discard(held.key_hash)
                            self._lag_record = min(_LAG_RECORD, self._lag_record + _LAG_PAID)
                self._keep_in_hand([held for held in self._hand if held.key not in main])
                break
        if self._hand_halvings != sketch.halvings:
            self._keep_in_hand(self._hand)
        hand, counts = self._hand, self._hand_counts
        while len(hand) < self._victim_sample and main:
            _, entry = main.popitem(last=False)
            if entry.hits or entry.credit:
                self._pass(entry)
            else:
                entry.held_since = self._misses
                hand.append(entry)
                counts.append(sketch.frequency(entry.key_hash))
        if sketch.flooded:
            lowest = min(counts)
            return hand[counts.index(lowest)], lowest
        return self._least_held()

    def _least_held(self) -> tuple[Entry, int]:
        """The held entry of lowest count, each count capped by its wait: at most 12 x
        capacity / the misses since the hand took it unhit, but not below 3. The first
        such entry wins a tie. No list is built: this runs on every miss of a full cache.

        A full count (15) lasts four fifths of a capacity of misses, and every doubling
        of the wait halves the cap. A key recurring at the rate its count says is hit
        long before that; one never asked for again gives way to the candidates asked
        for again within a few capacities of misses, instead of after the sketch's next
        halvings. The floor keeps a popular set through a long scan of
        keys seen once or twice. Not applied on a flooded sketch, whose counts are
        mostly other keys' collisions: a candidate's would beat any capped count.
        """
        misses, span = self._misses, self._idle_span
        victim, lowest = self._hand[0], MAX_COUNT + 1
        for count, entry in zip(self._hand_counts, self._hand, strict=True):
            if count > _HELD_FLOOR:
                idle = misses - entry.held_since
                if idle * count > span:  # the cap, span // idle, is below the count
                    count = max(_HELD_FLOOR, span // idle)
            if count < lowest:
                victim, lowest = entry, count
        return victim, lowest

    def _keep_in_hand(self, entries: list[Entry]) -> None:
        frequency = self._sketch.frequency
        self._hand = entries
        self._hand_counts = [frequency(entry.key_hash) for entry in entries]
        self._hand_halvings = self._sketch.halvings

    def _pass(self, entry: Entry) -> None:
        """The hand passes an entry hit or credited since: hits become credit, one credit
        is spent, and it goes to the tail."""
        if entry.hits:
            entry.credit = min(self._max_credit, entry.credit + entry.hits)
            self._bank(entry)
        entry.credit -= 1
        self._main[entry.key] = entry

    def _evict(self, victim: Entry, dropped: list[Entry]) -> None:
        index = self._hand.index(victim)
        del self._hand[index], self._hand_counts[index]
        if self._kept:
            self._kept.discard(victim.key_hash)
        self._main_ghost.add(victim.key_hash)
        dropped.append(victim)

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
