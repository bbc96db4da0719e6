"""The dashboard's aggregation: SQL digests on a real store, against the same digest made in
Python from the records, and the figures both give."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from tests.dashboard_history import cache_samples, history, record
from vault_bmad.metrics.analyze import analyze
from vault_bmad.metrics.digest import bucket_times, digest_of
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
    agent_figures,
    attempt_series,
    cache_levels,
    overall,
    served_by_level,
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


CAPACITIES = {"analyst": 2, "architect": 1, "dev": 3}


def test_sql_and_python_digests_give_equal_figures(store: Store) -> None:
    attempts = history(NOW, 400, AGENTS)
    workflow = Attempt("run", "none", "workflow", 1, "done", NOW - 9, NOW - 9, NOW - 8)
    samples = cache_samples(NOW, 50)
    record(store, [*attempts, workflow], samples)
    since, until = NOW - 3600, NOW
    sql = query_digest(store, since, until, 60.0)
    python = digest_of([*attempts, workflow], since, until, 60.0, samples)
    assert sorted(map(repr, sql.groups)) == sorted(map(repr, python.groups))
    assert sql.bins == python.bins
    for mine, theirs in ((sql, python),):
        a, b = agent_figures(mine, CAPACITIES), agent_figures(theirs, CAPACITIES)
        assert [x.agent for x in a] == [y.agent for y in b] == sorted(CAPACITIES)
        for x, y in zip(a, b, strict=True):
            assert (x.attempts, x.done, x.latency_s) == (y.attempts, y.done, y.latency_s)
            assert x.busy_s == pytest.approx(y.busy_s)
            assert x.work_s == pytest.approx(y.work_s)
            assert x.utilization == pytest.approx(y.utilization)
        o, p = overall(mine, a), overall(theirs, b)
        assert (o.attempts, o.done, o.latency_s) == (p.attempts, p.done, p.latency_s)
        assert o.work_s == pytest.approx(p.work_s)
        assert o.throughput_per_min == pytest.approx(p.throughput_per_min)
        assert o.utilization == pytest.approx(p.utilization)
        assert o.wait_share == pytest.approx(p.wait_share)
        assert cache_levels(mine) == cache_levels(theirs)


def test_work_time_is_the_union_of_queued_and_running(store: Store) -> None:
    """A capacity-1 agent given 8 one-second tasks at once: it had work for 8 s, all busy,
    whatever the range around it; the vault had work as long."""
    start = NOW - 1000.5
    tasks = [
        Attempt(f"t{n}", "solo", "llm", 1, "done", start, start + n, start + n + 1)
        for n in range(8)
    ]
    record(store, tasks, [])
    for since in (NOW - 3600, NOW - 86_400):
        digest = query_digest(store, since, NOW, 60.0)
        (solo,) = agent_figures(digest, {"solo": 1})
        assert solo.work_s == pytest.approx(8.0)
        assert solo.busy_s == pytest.approx(8.0)
        assert solo.utilization == pytest.approx(1.0)
        totals = overall(digest, [solo])
        assert totals.work_s == pytest.approx(8.0)
        assert totals.throughput_per_min == pytest.approx(60.0)
        rows = utilization_grid(digest, {"solo": 1})[2][0]
        assert {round(v, 6) for v in rows if v is not None} == {1.0}


def test_analyzer_and_dashboard_figures_are_equal(store: Store) -> None:
    attempts = history(NOW, 400, AGENTS)
    record(store, attempts, [])
    since, until = NOW - 3600, NOW
    digest = query_digest(store, since, until, 60.0)
    agents = agent_figures(digest, CAPACITIES)
    found = overall(digest, agents)
    analysis = analyze(attempts, since=since, until=until, capacities=CAPACITIES)
    expected = analysis.overall
    assert (found.attempts, found.done, found.failed) == (
        expected.attempts,
        expected.done,
        expected.failed,
    )
    assert found.latency_s == expected.latency_s  # the same histogram, the same percentiles
    for name in ("error_rate", "throughput_per_min", "hit_rate", "wait_share", "utilization"):
        assert getattr(found, name) == pytest.approx(getattr(expected, name)), name
    for mine, theirs in zip(agents, analysis.agents, strict=True):
        assert (mine.agent, mine.attempts, mine.latency_s) == (
            theirs.agent,
            theirs.attempts,
            theirs.latency_s,
        )
        assert mine.utilization == pytest.approx(theirs.utilization)
    exact = percentile([a.ended_at - a.queued_at for a in attempts], 95)
    assert within(found.latency_s["p95"], exact)


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
    assert set(rows[-1]) == {None}  # qa had no work
    assert all(v is None or 0 <= v <= 1 + 1e-9 for row in rows for v in row)
    busy = sum(a.ended_at - a.started_at for a in attempts if a.agent == "dev")
    assert sum(c.seconds for c in digest.busy if c.agent == "dev") == pytest.approx(busy)
    served = served_by_level(digest)
    assert list(served) == ["L1", "L2", "L3", "miss"]
    assert sum(served.values()) == len(attempts)


def test_joined_digests_equal_one_query(store: Store) -> None:
    cut = NOW - 1500
    waited = Attempt("long", "dev", "llm", 1, "done", cut - 100, cut - 50, cut + 5)
    record(store, [*history(NOW, 500, AGENTS), waited], cache_samples(NOW, 50))
    whole = query_digest(store, NOW - 3600, NOW, 60.0)
    later = query_digest(store, cut, NOW, 60.0, origin=NOW - 3600)
    joined = query_digest(store, NOW - 3600, cut, 60.0).joined(later)
    assert later.covered_from is not None and later.covered_from < cut  # queued before the cut
    assert sorted(map(repr, joined.groups)) == sorted(map(repr, whole.groups))
    assert joined.bins == whole.bins
    assert joined.levels == whole.levels
    for part in ("work", "busy"):
        mine = {(c.slot, c.agent): c.seconds for c in getattr(joined, part)}
        theirs = {(c.slot, c.agent): c.seconds for c in getattr(whole, part)}
        assert mine.keys() == theirs.keys()
        assert all(mine[k] == pytest.approx(theirs[k]) for k in mine)
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
    capacities = dict.fromkeys(AGENTS, 1)
    mine = asdict(overall(again, agent_figures(again, capacities)))
    theirs = asdict(overall(fresh, agent_figures(fresh, capacities)))
    assert mine.pop("latency_s") == theirs.pop("latency_s")
    assert mine == pytest.approx(theirs)
    assert again.bins == fresh.bins


def test_cache_levels_from_the_counters(store: Store) -> None:
    samples = cache_samples(NOW, 30)
    record(store, history(NOW, 50, AGENTS), samples)
    digest = query_digest(store, NOW - 3600, NOW, 60.0)
    levels = {level.level: level for level in cache_levels(digest)}
    assert list(levels) == ["L1", "L2", "L3"]
    for name, level in levels.items():
        mine = [s for s in samples if s.level == name]
        # no sample before the period: the counters started in it, the first counts in full
        assert level.hits == mine[-1].hits
        assert level.misses == mine[-1].misses
        assert level.size == mine[-1].size
        assert level.source == "samples"
    later = query_digest(store, NOW - 1200, NOW, 60.0)  # from the sample before the period
    l1 = [s for s in samples if s.level == "L1"]
    before = max((s for s in l1 if s.at < NOW - 1200), key=lambda s: s.at)
    (first, *_) = cache_levels(later)
    assert first.hits == l1[-1].hits - before.hits
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
