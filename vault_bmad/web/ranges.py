"""The dashboard's time ranges: "1h", "24h", "7d", "all" or a custom one, as a period and
a bucket size.

Pure. A period is cut into at most `MAX_BUCKETS` (+1 for the partial first) buckets of a
round size (a minute at least, so throughput reads per minute), aligned to the epoch so
that closed buckets stay the same from one request to the next and can be cached. A
span longer than the store's history is cut to it (`bounded_span`), so no number in a
request makes its answer, or the work behind it, grow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vault_bmad.metrics.report import bounded_span, parse_span

DEFAULT_RANGE = "1h"
CUSTOM = "custom"  # `from` and `to` give the period, in epoch seconds
CHOICES: tuple[tuple[str, str], ...] = (
    ("1h", "Last hour"),
    ("24h", "Last day"),
    ("7d", "Last 7 days"),
    ("all", "All"),
)
MAX_BUCKETS = 150
BUCKET_SIZES_S: tuple[int, ...] = (
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10_800,
    21_600,
    43_200,
    86_400,
    172_800,
    604_800,
)


@dataclass(frozen=True)
class TimeRange:
    name: str
    since: float  # the first bucket's start
    until: float  # now, or the end of a custom range
    bucket_s: float

    @property
    def key(self) -> str:
        """What names the range among cached answers: a sliding range by its name."""
        return f"{self.name} {self.since} {self.until}" if self.name == CUSTOM else self.name


def bucket_size(span_s: float) -> float:
    """The smallest round bucket that cuts `span_s` into at most MAX_BUCKETS: past the
    largest round size, a whole number of them."""
    wanted = span_s / MAX_BUCKETS
    largest = BUCKET_SIZES_S[-1]
    found = next((size for size in BUCKET_SIZES_S if size >= wanted), None)
    return float(found if found is not None else math.ceil(wanted / largest) * largest)


def time_range(
    name: str,
    now: float,
    earliest: float | None,
    *,
    start: float | None = None,
    end: float | None = None,
) -> TimeRange:
    """The range `name` ("1h", "90m", "24h", "7d", "all", "custom") up to `now`; "all"
    starts at `earliest` (the first recorded attempt), or an hour ago when nothing is
    recorded; "custom" runs from `start` to `end`, cut at `now`. A span reaching before
    `earliest` is cut to it (`bounded_span`).

    Raises ValueError for a name that is not a span of time, or a custom range without a
    start before its end.
    """
    cleaned = name.strip().lower()
    if cleaned == CUSTOM:
        if start is None or end is None or not start < end:
            raise ValueError("a custom range needs `from` before `to`, in epoch seconds")
        until = max(min(end, now), start)
        length = bounded_span(max(60.0, until - start), until, earliest)
        size = bucket_size(length)
        return TimeRange(CUSTOM, math.floor((until - length) / size) * size, until, size)
    asked = parse_span(cleaned)
    if asked is None:
        span = max(60.0, now - earliest) if earliest is not None else 3600.0
    else:
        span = bounded_span(asked, now, earliest)
    bucket = bucket_size(span)
    since = math.floor((now - span) / bucket) * bucket
    return TimeRange(cleaned, since, now, bucket)
