"""A count-min frequency sketch with 4-bit counters that halve with age (TinyLFU's popularity)."""

from __future__ import annotations

from collections.abc import Hashable

_MASK64 = (1 << 64) - 1
MAX_COUNT = 15
_DEPTH = 4
_HALVED = bytes(value >> 1 for value in range(256))
_CENSUSES = 4  # flood checks per sample


def spread_hash(key: Hashable) -> int:
    """Mix Python's hash of `key` into 64 well-spread bits (murmur3's finaliser)."""
    h = hash(key) & _MASK64
    h = ((h ^ (h >> 33)) * 0xFF51AFD7ED558CCD) & _MASK64
    h = ((h ^ (h >> 33)) * 0xC4CEB9FE1A85EC53) & _MASK64
    return h ^ (h >> 33)


class FrequencySketch:
    """Approximate recent access counts for any number of keys in a fixed space.

    Four rows of saturating 4-bit counters (one byte each), indexed by double hashing.
    After `sample_factor * capacity` additions every counter halves, so old popularity
    fades and the sketch follows a changing workload.

    `flooded` says whether more keys pass through than the rows can tell apart: every
    row is more than half taken, so a key never seen reads above zero in each row more
    often than not and counts rank keys poorly; `free_share` says by how much. Both are
    taken every quarter of a sample (a scan of each row), never per access.
    """

    def __init__(self, capacity: int, *, width_factor: int = 4, sample_factor: int = 24) -> None:
        width = 16
        while width < capacity * width_factor:
            width <<= 1
        self._mask = width - 1
        self._rows = [bytearray(width) for _ in range(_DEPTH)]
        self._additions = 0
        self._sample_size = sample_factor * max(1, capacity)
        self._census_every = max(1, self._sample_size // _CENSUSES)
        self._next_census = self._census_every
        self.flooded = False
        self.free_share = 1.0  # share of counters at zero in the row with most of them
        self.halvings = 0  # how many times the counters halved, so callers know a count aged

    @property
    def width(self) -> int:
        return self._mask + 1

    def frequency(self, key_hash: int) -> int:
        """The estimated count for `key_hash` (never below the true count, at most 15)."""
        mask = self._mask
        first = key_hash & mask
        step = (key_hash >> 32) | 1
        rows = self._rows
        return min(
            rows[0][first],
            rows[1][(first + step) & mask],
            rows[2][(first + 2 * step) & mask],
            rows[3][(first + 3 * step) & mask],
        )

    def add(self, key_hash: int, count: int = 1) -> None:
        """Record `count` accesses of `key_hash`; may trigger the periodic halving."""
        if count <= 0:
            return
        mask = self._mask
        first = key_hash & mask
        step = (key_hash >> 32) | 1
        for row in self._rows:
            value = row[first] + count
            row[first] = value if value < MAX_COUNT else MAX_COUNT
            first = (first + step) & mask
        self._additions += count
        if self._additions >= self._next_census:
            self._take_census()

    def halve(self) -> None:
        """Age every counter by half."""
        self._rows = [row.translate(_HALVED) for row in self._rows]
        self._additions //= 2
        self.halvings += 1

    def _take_census(self) -> None:
        """Update `free_share` and `flooded`; halve once a whole sample has been added."""
        self.free_share = max(row.count(0) for row in self._rows) / (self._mask + 1)
        self.flooded = self.free_share < 0.5
        if self._additions >= self._sample_size:
            self.halve()
        self._next_census = min(self._sample_size, self._additions + self._census_every)
