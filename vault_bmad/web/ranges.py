"""The dashboard's time ranges: "1h", "24h", "7d" or "all", as a period and a bucket size.

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
CHOICES: tuple[tuple[str, str], ...] = (("1h", "Last hour"), ("24h", "Last day"), ("all", "All"))
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
    until: float  # now
    bucket_s: float


def bucket_size(span_s: float) -> float:
    """The smallest round bucket that cuts `span_s` into at most MAX_BUCKETS: past the
    largest round size, a whole number of them."""
    wanted = span_s / MAX_BUCKETS
    largest = BUCKET_SIZES_S[-1]
    found = next((size for size in BUCKET_SIZES_S if size >= wanted), None)
    return float(found if found is not None else math.ceil(wanted / largest) * largest)


def time_range(name: str, now: float, earliest: float | None) -> TimeRange:
    """The range `name` ("1h", "90m", "24h", "7d", "all") up to `now`; "all" starts at
    `earliest` (the first recorded attempt), or an hour ago when nothing is recorded, and
    a span reaching before `earliest` is cut to it (`bounded_span`).

    Raises ValueError for a name that is not a span of time.
    """
    span = parse_span(name)
    if span is None:
        span = max(60.0, now - earliest) if earliest is not None else 3600.0
    else:
        span = bounded_span(span, now, earliest)
    bucket = bucket_size(span)
    since = math.floor((now - span) / bucket) * bucket
    return TimeRange(name.strip().lower(), since, now, bucket)
