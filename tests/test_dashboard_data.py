"""The dashboard's aggregation: SQL digests on a real store, against the analyzer's figures."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboard_history import cache_samples, history, record
from vault_bmad.metrics.analyze import analyze
from vault_bmad.metrics.figures import percentile
from vault_bmad.metrics.histogram import (
    RELATIVE_ERROR,
    bin_bounds,
    bin_sql,
    percentile_from_bins,
)
from vault_bmad.metrics.queries import DigestCache, earliest_attempt, query_digest
from vault_bmad.metrics.records import Attempt
from vault_bmad.metrics.series import (
    agent_periods,
    attempt_series,
    bucket_times,
    level_totals,
    served_by_level,
    totals,
    utilization_grid,
)
from vault_bmad.metrics.store import Store
from vault_bmad.web.ranges import MAX_BUCKETS, time_range

NOW = 1_800_000_000.0
AGENTS = ("analyst", "architect", "dev")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "state.db") as opened:
        yield opened


def within(approx: float | None, exact: float | None) -> bool:
    """A binned percentile against the exact one, latencies under 1 ms counting as 1 ms."""
    assert approx is not None and exact is not None
    exact = max(exact, 0.001)
    return abs(approx - exact) <= exact * RELATIVE_ERROR * 1.0001


def sql_bins(store: Store, values: list[float]) -> list[int]:
    """Each latency's bin, as the store's queries compute it."""
    rows = store.query(
        f"SELECT {bin_sql('value')} AS bin FROM json_each(?) ORDER BY key", [json.dumps(values)]
    )
    return [row["bin"] for row in rows]


def test_each_sql_bin_holds_its_latency(store: Store) -> None:
    values = [0.0, 0.0004, 0.001, 0.0123, 0.5, 0.999, 1.0, 1.0001, 7.3, 59.9, 3600.0]
    for value, number in zip(values, sql_bins(store, values), strict=True):
        low, high = bin_bounds(number)
        assert low <= max(value, 0.001) < high * (1 + 1e-12)


def test_binned_percentiles_stay_within_the_bound(store: Store) -> None:
    rng = random.Random(11)
    for size in (1, 2, 7, 100, 5000):
        values = [rng.lognormvariate(0, 1.5) for _ in range(size)]
        counts: dict[int, int] = {}
        for number in sql_bins(store, values):
            counts[number] = counts.get(number, 0) + 1
        for percent in (1, 50, 90, 95, 99, 100):
            assert within(percentile_from_bins(counts, percent), percentile(values, percent))
    assert percentile_from_bins({}, 50) is None


def test_digest_totals_agree_with_the_analyzer(store: Store) -> None:
    attempts = history(NOW, 400, AGENTS)
    workflow = Attempt("run", "none", "workflow", 1, "done", NOW - 9, NOW - 9, NOW - 8)
    record(store, [*attempts, workflow], [])
    since, until = NOW - 3600, NOW
    digest = query_digest(store, since, until, 60.0)
    found = totals(digest)
    analysis = analyze(
        attempts, since=since, until=until, capacities={"analyst": 2, "architect": 1, "dev": 3}
    )
    overall = analysis.overall
    assert (found.attempts, found.done, found.failed) == (
        overall.attempts,
        overall.done,
        overall.failed,
    )
    assert found.error_rate == pytest.approx(overall.error_rate)
    assert found.throughput_per_min == pytest.approx(overall.throughput_per_min)
    assert found.hit_rate == pytest.approx(overall.hit_rate)
    assert found.wait_share == pytest.approx(overall.wait_share)
    assert within(found.latency_s["p50"], overall.latency_p50_s)
    assert within(found.latency_s["p95"], overall.latency_p95_s)
    assert within(found.latency_s["p99"], overall.latency_p99_s)
    capacities = {a.agent: a.capacity for a in analysis.agents}
    for mine, theirs in zip(agent_periods(digest, capacities), analysis.agents, strict=True):
        assert (mine.agent, mine.attempts, mine.done) == (
            theirs.agent,
            theirs.attempts,
            theirs.done,
        )
        assert mine.utilization == pytest.approx(theirs.utilization)
        assert within(mine.latency_s["p50"], theirs.latency_p50_s)


def test_series_cover_every_bucket_and_sum_to_the_totals(store: Store) -> None:
    attempts = history(NOW, 300, AGENTS, span_s=1800)
    record(store, attempts, [])
    digest = query_digest(store, NOW - 3600, NOW, 300.0)
    times = bucket_times(digest)
    assert len(times) == 12 and times[0] == NOW - 3600
    series = attempt_series(digest)
    done = sum(v or 0.0 for v in series.values["done_per_min"]) * 5  # per minute, 5-min buckets
    failed = sum(v or 0.0 for v in series.values["failed_per_min"]) * 5
    assert round(done) == sum(1 for a in attempts if a.status == "done")
    assert round(done + failed) == len(attempts)
    assert all(v == 0 for v in series.values["done_per_min"][:6])  # nothing in the first half
    agents, grid_times, rows = utilization_grid(digest, {"qa": 1})
    assert agents == (*AGENTS, "qa") and grid_times == times
    assert sum(rows[-1]) == 0  # qa ran nothing
    busy = sum(a.ended_at - a.started_at for a in attempts if a.agent == "dev")
    assert sum(rows[2]) * 300.0 == pytest.approx(busy)
    served = served_by_level(digest)
    assert list(served) == ["L1", "L2", "L3", "miss"]
    assert sum(served.values()) == len(attempts)


def test_joined_digests_equal_one_query(store: Store) -> None:
    record(store, history(NOW, 500, AGENTS), cache_samples(NOW, 50))
    whole = query_digest(store, NOW - 3600, NOW, 60.0)
    cut = NOW - 1500
    joined = query_digest(store, NOW - 3600, cut, 60.0).joined(query_digest(store, cut, NOW, 60.0))
    assert sorted(map(repr, joined.groups)) == sorted(map(repr, whole.groups))
    assert joined.bins == whole.bins
    assert joined.levels == whole.levels
    with pytest.raises(ValueError):
        whole.joined(query_digest(store, NOW - 10, NOW, 60.0))


def test_digest_cache_extends_its_closed_part(store: Store) -> None:
    record(store, history(NOW, 200, AGENTS, span_s=3000), [])
    cache = DigestCache(store, late_s=10.0)
    since = NOW - 3600
    first = cache.digest(since, NOW - 1200, 60.0)
    assert first.groups == query_digest(store, since, NOW - 1200, 60.0).groups
    later = history(NOW, 40, AGENTS, span_s=600, seed=8)  # end in the last 10 minutes
    record(store, later, [])
    again = cache.digest(since, NOW, 60.0)
    fresh = query_digest(store, since, NOW, 60.0)
    assert totals(again) == totals(fresh)
    assert again.bins == fresh.bins


def test_cache_levels_from_the_counters(store: Store) -> None:
    samples = cache_samples(NOW, 30)
    record(store, history(NOW, 50, AGENTS), samples)
    digest = query_digest(store, NOW - 3600, NOW, 60.0)
    levels = {level.level: level for level in level_totals(digest)}
    assert list(levels) == ["L1", "L2", "L3"]
    for name, level in levels.items():
        mine = [s for s in samples if s.level == name]
        assert level.hits == mine[-1].hits - mine[0].hits
        assert level.misses == mine[-1].misses - mine[0].misses
        assert level.size == mine[-1].size
        assert level.source == "samples"
    assert levels["L1"].hit_rate is not None and levels["L3"].hit_rate is not None
    assert levels["L1"].hit_rate > levels["L3"].hit_rate


def test_ranges_are_aligned_and_bounded(store: Store) -> None:
    assert earliest_attempt(store) is None
    record(store, history(NOW, 10, AGENTS, span_s=9 * 86_400), [])
    first = earliest_attempt(store)
    assert first is not None and first < NOW - 8 * 86_400
    for name in ("1h", "24h", "90m", "all"):
        period = time_range(name, NOW + 7, first)
        assert period.since % period.bucket_s == 0
        buckets = math.ceil((period.until - period.since) / period.bucket_s)
        assert buckets <= MAX_BUCKETS + 1
        assert period.since <= (first if name == "all" else NOW + 7 - 3600)
    with pytest.raises(ValueError):
        time_range("yesterday", NOW, None)
