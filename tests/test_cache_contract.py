"""One contract, run against every `CacheLevel` (L1, L2, L3) and the tiered cache."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from engine_clock import FakeClock

from vault_bmad.cache.disk import DiskCache
from vault_bmad.cache.level import CacheLevel
from vault_bmad.cache.memory import MemoryCache
from vault_bmad.cache.tiered import LevelSpec, TieredCache, TieredStats

Level = CacheLevel | TieredCache
MISSING = object()


@dataclass
class Harness:
    """Builds one kind of level and reads its hit and miss counts."""

    kind: str
    build: Callable[[int, float | None], Level]
    made: list[Level]

    def make(self, capacity: int = 100, ttl: float | None = 60.0) -> Level:
        level = self.build(capacity, ttl)
        self.made.append(level)
        return level

    def counts(self, level: Level) -> tuple[int, int]:
        stats = level.stats()
        if isinstance(stats, TieredStats):
            hits = sum(each.hits for each in stats.levels)
            return hits, stats.levels[0].requests - hits
        return stats.hits, stats.misses


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["L1", "L2", "L3", "tiered"])
def harness(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Harness]:
    kind = request.param
    counter = iter(range(1_000))

    def build(capacity: int, ttl: float | None) -> Level:
        if kind in ("L1", "L2"):
            return MemoryCache(capacity, ttl, name=kind, clock=clock)
        directory = tmp_path / f"cache-{next(counter)}"
        if kind == "L3":
            return DiskCache(directory, capacity, ttl, clock=clock)
        spec = LevelSpec(capacity, ttl)
        return TieredCache(directory, l1=spec, l2=spec, l3=spec, clock=clock)

    made: list[Level] = []
    yield Harness(kind, build, made)
    for level in made:
        level.close()


class TestLevelContract:
    def test_a_missing_key_gives_the_default_and_counts_a_miss(self, harness: Harness) -> None:
        level = harness.make()
        assert level.get("absent") is None
        assert level.get("absent", MISSING) is MISSING
        assert harness.counts(level) == (0, 2)

    def test_a_stored_value_comes_back_and_counts_a_hit(self, harness: Harness) -> None:
        level = harness.make()
        level.set("key", {"answer": 42})
        assert level.get("key") == {"answer": 42}
        assert harness.counts(level) == (1, 0)

    def test_none_is_a_value_not_an_absence(self, harness: Harness) -> None:
        level = harness.make()
        level.set("nothing", None)
        assert level.get("nothing", MISSING) is None
        assert "nothing" in level

    def test_setting_again_replaces_the_value(self, harness: Harness) -> None:
        level = harness.make()
        level.set("key", "first")
        level.set("key", "second")
        assert level.get("key") == "second"

    def test_delete_removes_and_reports_presence(self, harness: Harness) -> None:
        level = harness.make()
        level.set("key", "value")
        assert level.delete("key") is True
        assert level.delete("key") is False
        assert "key" not in level
        assert level.get("key", MISSING) is MISSING

    def test_contains_counts_nothing(self, harness: Harness) -> None:
        level = harness.make()
        level.set("key", "value")
        assert "key" in level
        assert "other" not in level
        assert harness.counts(level) == (0, 0)

    def test_an_entry_expires_after_its_ttl(self, harness: Harness, clock: FakeClock) -> None:
        level = harness.make(ttl=10.0)
        level.set("key", "value")
        clock.advance(9.9)
        assert level.get("key") == "value"
        clock.advance(0.2)
        assert level.get("key", MISSING) is MISSING
        assert "key" not in level

    def test_a_ttl_given_to_set_overrides_the_levels(
        self, harness: Harness, clock: FakeClock
    ) -> None:
        level = harness.make(ttl=10.0)
        level.set("short", "value", ttl=1.0)
        level.set("long", "value", ttl=100.0)
        clock.advance(50.0)
        assert "short" not in level
        assert level.get("long") == "value"

    def test_without_a_ttl_entries_do_not_expire(self, harness: Harness, clock: FakeClock) -> None:
        level = harness.make(ttl=None)
        level.set("key", "value")
        clock.advance(10**9)
        assert level.get("key") == "value"

    def test_expire_drops_everything_past_its_ttl(self, harness: Harness, clock: FakeClock) -> None:
        level = harness.make(ttl=10.0)
        for number in range(5):
            level.set(f"old-{number}", number)
        clock.advance(5.0)
        level.set("young", "value")
        clock.advance(6.0)
        assert level.expire() >= 5
        assert len(level) >= 1
        assert level.get("young") == "value"
        assert all(f"old-{number}" not in level for number in range(5))

    def test_the_level_stays_within_its_capacity(self, harness: Harness) -> None:
        level = harness.make(capacity=20)
        for number in range(500):
            level.set(number, number)
        levels_held = 3 if harness.kind == "tiered" else 1
        assert len(level) <= 20 * levels_held
        assert len(level) > 0

    def test_clear_empties_the_level(self, harness: Harness) -> None:
        level = harness.make()
        for number in range(10):
            level.set(number, number)
        level.clear()
        assert len(level) == 0
        assert all(number not in level for number in range(10))

    def test_many_threads_get_and_set_safely(self, harness: Harness) -> None:
        level = harness.make(capacity=64, ttl=None)
        errors: list[BaseException] = []
        gets_per_thread = 200

        def work(offset: int) -> None:
            try:
                for number in range(gets_per_thread):
                    key = (offset * 7 + number) % 100
                    value = level.get(key, MISSING)
                    if value is MISSING:
                        level.set(key, key * 2)
                    elif value != key * 2:
                        raise AssertionError(f"{key} held {value}")
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=work, args=(offset,)) for offset in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        hits, misses = harness.counts(level)
        assert hits + misses == 6 * gets_per_thread
        assert hits > 0


@pytest.mark.parametrize("harness", ["L1", "L2", "L3"], indirect=True)
class TestSingleLevelStats:
    """The tier reports each level's own counters: see test_cache_tiered."""

    def test_evictions_and_expirations_are_counted_apart(
        self, harness: Harness, clock: FakeClock
    ) -> None:
        level = harness.make(capacity=10, ttl=10.0)
        assert isinstance(level, CacheLevel)
        for number in range(10):
            level.set(number, number)
        clock.advance(11.0)
        for number in range(10, 40):
            level.set(number, number)
        stats = level.stats()
        assert stats.expirations > 0
        assert stats.evictions > 0
        assert stats.expirations + stats.evictions == 30
        assert stats.size == len(level) <= 10
        assert stats.capacity == 10
