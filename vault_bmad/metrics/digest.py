"""A period's attempts and samples summed by time bucket: what every figure is read from.

A `Digest` holds, for the period `[since, until)` cut into buckets aligned to the epoch:
attempt counts and time sums by (bucket, agent, status, cache level), a log-binned latency
histogram by agent, cache and pool samples, and how many seconds of each bucket an agent
had work (some attempt it ran queued or running), the vault had work, and each agent ran.

Two ways make one: `metrics.queries.query_digest` asks SQLite (the dashboard, over
millions of attempts) and `digest_of` sums records in Python (a report, over the records
it read). Both sum the same things by the same rules, so `metrics.series` reads the same
figures from either. Pure.

Work and run time are time covered, so they are kept by the buckets they cover, not the
bucket an attempt ended in: spans (an attempt from queued, or from started, to ended) are
merged where they overlap, and each merged piece is cut at bucket edges. SQL returns the
pieces summed by their first and last bucket (`Spread`), and `spread` cuts them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from vault_bmad.metrics.histogram import bin_of
from vault_bmad.metrics.records import WORKFLOW_RUNTIME, Attempt, CacheSample


@dataclass(frozen=True)
class AttemptGroup:
    """Attempts that ended in one bucket with the same agent, status and cache level."""

    slot: float  # the bucket's start, epoch seconds
    agent: str
    status: str
    cache: str
    count: int
    wait_s: float  # summed queue wait
    latency_s: float  # summed wait + run


@dataclass(frozen=True)
class LatencyBin:
    agent: str
    bin: int  # see metrics.histogram
    count: int


@dataclass(frozen=True)
class LevelSample:
    """A cache level's cumulative counters at the last sample of a bucket."""

    slot: float
    level: str
    at: float
    hits: int
    misses: int
    evictions: int
    expirations: int
    size: int
    ghost_hits: int = 0


@dataclass(frozen=True)
class PoolPoint:
    """The pool's peak size, busy workers and queue among the samples of a bucket."""

    slot: float
    at: float
    size: int
    busy: int
    queued: int


@dataclass(frozen=True)
class Coverage:
    """Seconds of one bucket covered: by an agent's work or runs, or (agent None) by the
    vault's work."""

    slot: float
    agent: str | None
    seconds: float


@dataclass(frozen=True)
class Spread:
    """Time pieces summed by the buckets they start and end in: `head` seconds fall in
    the first bucket, `tail` in the last when it is another, and each bucket between is
    covered whole, once per piece (`count`)."""

    agent: str | None
    first: int  # bucket numbers: a bucket starts at number × bucket_s
    last: int
    count: int
    head: float
    tail: float


@dataclass(frozen=True)
class Digest:
    """The period `[since, until)` in buckets of `bucket_s` seconds, aligned to the epoch."""

    since: float
    until: float
    bucket_s: float
    groups: tuple[AttemptGroup, ...] = ()
    bins: tuple[LatencyBin, ...] = ()
    levels: tuple[LevelSample, ...] = ()
    pool: tuple[PoolPoint, ...] = ()
    work: tuple[Coverage, ...] = ()  # by agent, and by the vault (agent None)
    busy: tuple[Coverage, ...] = ()  # run time, by agent
    baseline: tuple[LevelSample, ...] = ()  # each cache level's last sample before `since`
    covered_from: float | None = None  # work and busy are whole from here (None: since)

    def joined(self, later: Digest) -> Digest:
        """This period followed by `later`, which starts where this one ends. `later`'s
        work and busy time are whole from its `covered_from` on, and this one's before."""
        if later.since != self.until or later.bucket_s != self.bucket_s:
            raise ValueError("only consecutive digests with the same buckets join")
        cut = later.since if later.covered_from is None else later.covered_from
        counts: dict[tuple[str, int], int] = {}
        for item in (*self.bins, *later.bins):
            key = (item.agent, item.bin)
            counts[key] = counts.get(key, 0) + item.count
        return Digest(
            since=self.since,
            until=later.until,
            bucket_s=self.bucket_s,
            groups=self.groups + later.groups,
            bins=tuple(LatencyBin(a, b, n) for (a, b), n in sorted(counts.items())),
            levels=self.levels + later.levels,
            pool=self.pool + later.pool,
            work=tuple(c for c in self.work if c.slot < cut) + later.work,
            busy=tuple(c for c in self.busy if c.slot < cut) + later.busy,
            baseline=self.baseline,
            covered_from=self.covered_from,
        )

    def with_samples(self, samples: Iterable[CacheSample]) -> Digest:
        """The digest with more cache samples inside its period, such as the counters now."""
        added = tuple(level_sample(s, self.bucket_s) for s in samples if self.since <= s.at)
        return replace(self, levels=self.levels + added)


def slot_of(moment: float, bucket_s: float) -> float:
    """The start of the bucket holding `moment`, as SQL computes it."""
    return int(moment / bucket_s) * bucket_s


def bucket_times(digest: Digest) -> tuple[float, ...]:
    """Every bucket's start in the period, gaps included."""
    first = digest.since - digest.since % digest.bucket_s
    count = max(0, int(-(-(digest.until - first) // digest.bucket_s)))
    return tuple(first + n * digest.bucket_s for n in range(count))


def level_sample(sample: CacheSample, bucket_s: float) -> LevelSample:
    return LevelSample(
        slot_of(sample.at, bucket_s),
        sample.level,
        sample.at,
        sample.hits,
        sample.misses,
        sample.evictions,
        sample.expirations,
        sample.size,
        sample.ghost_hits,
    )


def spread(pieces: Iterable[Spread], bucket_s: float) -> tuple[Coverage, ...]:
    """Seconds covered per (bucket, agent), from pieces summed by first and last bucket."""
    seconds: dict[tuple[float, str | None], float] = defaultdict(float)
    for piece in pieces:
        seconds[(piece.first * bucket_s, piece.agent)] += piece.head
        if piece.last > piece.first:
            seconds[(piece.last * bucket_s, piece.agent)] += piece.tail
            for number in range(piece.first + 1, piece.last):
                seconds[(number * bucket_s, piece.agent)] += piece.count * bucket_s
    return tuple(
        Coverage(slot, agent, s) for (slot, agent), s in sorted(seconds.items(), key=_by_slot)
    )


def _by_slot(item: tuple[tuple[float, str | None], float]) -> tuple[float, str]:
    (slot, agent), _ = item
    return slot, agent or ""


def pieces(
    spans: Iterable[tuple[str | None, float, float]], bucket_s: float, *, merge: bool
) -> list[Spread]:
    """(agent, start, end) spans as `Spread` rows, as the store's SQL makes them; with
    `merge`, each agent's overlapping spans count once (their union)."""
    found: dict[tuple[str | None, int, int], list[float]] = {}
    for agent, start, end in _merged(spans) if merge else spans:
        if end <= start:
            continue
        first, last = int(start / bucket_s), int(end / bucket_s)
        tally = found.setdefault((agent, first, last), [0, 0.0, 0.0])
        tally[0] += 1
        tally[1] += min(end, (first + 1) * bucket_s) - start
        tally[2] += end - last * bucket_s if last > first else 0.0
    return [Spread(a, f, la, int(n), h, t) for (a, f, la), (n, h, t) in found.items()]


def _merged(
    spans: Iterable[tuple[str | None, float, float]],
) -> list[tuple[str | None, float, float]]:
    """Each agent's spans, each cut to what no earlier-starting span covered."""
    by_agent: dict[str | None, list[tuple[float, float]]] = defaultdict(list)
    for agent, start, end in spans:
        by_agent[agent].append((start, end))
    found = []
    for agent, own in by_agent.items():
        reach = -math.inf
        for start, end in sorted(own):
            found.append((agent, max(start, reach), end))
            reach = max(reach, end)
    return found


def digest_of(
    attempts: Sequence[Attempt],
    since: float,
    until: float,
    bucket_s: float,
    samples: Sequence[CacheSample] = (),
) -> Digest:
    """The digest `query_digest` would read from a store holding these records."""
    period = [a for a in attempts if since <= a.ended_at < until and a.runtime != WORKFLOW_RUNTIME]
    groups: dict[tuple[float, str, str, str], list[float]] = {}
    bins: dict[tuple[str, int], int] = defaultdict(int)
    for a in period:
        latency = max(a.ended_at - a.queued_at, 0.0)
        tally = groups.setdefault(
            (slot_of(a.ended_at, bucket_s), a.agent, a.status, a.cache), [0, 0.0, 0.0]
        )
        tally[0] += 1
        tally[1] += max(a.started_at - a.queued_at, 0.0)
        tally[2] += latency
        bins[(a.agent, bin_of(latency))] += 1
    work = [(a.agent, max(a.queued_at, since), a.ended_at) for a in period]
    runs = [(a.agent, max(a.started_at, since), a.ended_at) for a in period]
    last: dict[tuple[float, str], CacheSample] = {}
    before: dict[str, CacheSample] = {}
    for s in sorted(samples, key=lambda s: s.at):
        if s.at < since:
            before[s.level] = s
        elif s.at < until:
            last[(slot_of(s.at, bucket_s), s.level)] = s
    return Digest(
        since=since,
        until=until,
        bucket_s=bucket_s,
        groups=tuple(
            AttemptGroup(slot, agent, status, cache, int(n), w, lat)
            for (slot, agent, status, cache), (n, w, lat) in sorted(groups.items())
        ),
        bins=tuple(LatencyBin(agent, number, n) for (agent, number), n in sorted(bins.items())),
        levels=tuple(level_sample(s, bucket_s) for _, s in sorted(last.items())),
        work=spread(
            pieces(work, bucket_s, merge=True)
            + pieces([(None, s, e) for _, s, e in work], bucket_s, merge=True),
            bucket_s,
        ),
        busy=spread(pieces(runs, bucket_s, merge=False), bucket_s),
        baseline=tuple(level_sample(s, bucket_s) for _, s in sorted(before.items())),
    )
