"""Latency histograms on log-spaced bins, and percentiles read from them.

SQLite has no percentile function, and sorting a million latencies per request is slow,
so the store groups latencies into bins `BINS_PER_DECADE` to a power of ten (in SQL,
with `bin_sql`) and percentiles are read from the counts. The nearest-rank value lies
in the bin found, and the bin's geometric middle is returned, so a percentile is within
`RELATIVE_ERROR` of the exact one (latencies under `FLOOR_S` count as `FLOOR_S`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

BINS_PER_DECADE = 40
FLOOR_S = 0.001  # one millisecond: shorter latencies share the lowest bin
RELATIVE_ERROR = 10 ** (1 / (2 * BINS_PER_DECADE)) - 1  # about 2.9%
PERCENTS: tuple[int, ...] = (50, 90, 95, 99)


def bin_sql(seconds: str) -> str:
    """An SQL expression for the bin of the latency `seconds` (an SQL expression)."""
    return f"CAST(floor(log10(max({seconds}, {FLOOR_S})) * {BINS_PER_DECADE}) AS INTEGER)"


def bin_of(seconds: float) -> int:
    """The bin of a latency in seconds: `bin_sql` in Python, to the same float operations."""
    return math.floor(math.log10(max(seconds, FLOOR_S)) * BINS_PER_DECADE)


def bin_bounds(number: int) -> tuple[float, float]:
    """The latencies `[low, high)` in seconds that fall into bin `number`."""
    return 10 ** (number / BINS_PER_DECADE), 10 ** ((number + 1) / BINS_PER_DECADE)


def bin_middle(number: int) -> float:
    """The geometric middle of a bin, in seconds."""
    return float(10 ** ((number + 0.5) / BINS_PER_DECADE))


def percentile_from_bins(counts: Mapping[int, int], percent: float) -> float | None:
    """Nearest rank over the binned values: the middle of the bin holding the value that has
    at least `percent`% of all values at or below it; None when there are none."""
    total = sum(counts.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(percent * total / 100))
    seen = 0
    for number in sorted(counts):
        seen += counts[number]
        if seen >= rank:
            return bin_middle(number)
    return bin_middle(max(counts))  # unreachable: the last bin reaches the total


def percentiles(counts: Mapping[int, int], percents: Iterable[int] = PERCENTS) -> dict[str, float]:
    """{"p50": seconds, ...} for the percents that have a value."""
    found = {f"p{p}": percentile_from_bins(counts, p) for p in percents}
    return {name: value for name, value in found.items() if value is not None}


def merge_counts(*parts: Mapping[int, int]) -> dict[int, int]:
    merged: dict[int, int] = {}
    for part in parts:
        for number, count in part.items():
            merged[number] = merged.get(number, 0) + count
    return merged
