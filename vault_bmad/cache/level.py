"""What every cache level offers, and the counters it reports for metrics."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import asdict, dataclass
from typing import Protocol


@dataclass(frozen=True)
class LevelStats:
    """A snapshot of one level's counters since it was created."""

    name: str
    hits: int
    misses: int
    evictions: int  # entries dropped by the policy to make room
    expirations: int  # entries dropped because their TTL had passed
    size: int
    capacity: int

    @property
    def requests(self) -> int:
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        return self.hits / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "hit_rate": self.hit_rate}


class CacheLevel(Protocol):
    """The mapping-like surface shared by the memory, disk and tiered caches."""

    def get(self, key: Hashable, default: object = None) -> object:
        """The value stored for `key`, counted as a hit or a miss; `default` if absent."""
        ...

    def set(self, key: Hashable, value: object, ttl: float | None = None) -> None:
        """Store `value`; `ttl` seconds overrides the level's own TTL."""
        ...

    def delete(self, key: Hashable) -> bool:
        """Remove `key`; True if it was there."""
        ...

    def __contains__(self, key: Hashable) -> bool:
        """Whether a live entry exists, without counting a hit or a miss."""
        ...

    def __len__(self) -> int: ...

    def expire(self) -> int:
        """Drop every expired entry now; return how many were dropped."""
        ...

    def clear(self) -> None: ...
