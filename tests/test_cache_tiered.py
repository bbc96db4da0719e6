"""The tiered cache: promotion, arrangements, stats, coalescing, failures, prefetch."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from engine_clock import FakeClock

from tests.waiting import wait_until
from vault_bmad.cache.keys import content_key
from vault_bmad.cache.memory import MemoryCache
from vault_bmad.cache.tiered import Arrangement, LevelSpec, TieredCache


def never(key: str) -> Callable[[], object]:
    def compute() -> object:
        raise AssertionError(f"{key} should have been served by a level")

    return compute


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def made() -> Iterator[list[TieredCache]]:
    caches: list[TieredCache] = []
    yield caches
    for cache in caches:
        cache.close()


L1_SPEC = LevelSpec(100, 300.0)
L2_SPEC = LevelSpec(1_000, 3_600.0)


def tiered(
    made: list[TieredCache],
    directory: Path | None,
    clock: FakeClock,
    *,
    l1: LevelSpec = L1_SPEC,
    l2: LevelSpec | None = L2_SPEC,
    arrangement: Arrangement = "exclusive",
    prefetch: float | None = None,
) -> TieredCache:
    cache = TieredCache(
        directory,
        l1=l1,
        l2=l2,
        l3=LevelSpec(10_000, 86_400.0),
        arrangement=arrangement,
        prefetch_threshold=prefetch,
        clock=clock,
    )
    made.append(cache)
    return cache


def push_out_of_l1(cache: TieredCache, count: int = 200) -> None:
    """Request other keys until L1's policy has dropped everything else from it."""
    for number in range(count):
        cache.get_or_compute(f"filler-{number}", str)


class TestPromotion:
    def test_an_l2_hit_moves_up_to_l1(self, made: list[TieredCache], clock: FakeClock) -> None:
        cache = tiered(made, None, clock, l1=LevelSpec(8, 300.0))
        cache.set("key", "value")
        push_out_of_l1(cache)
        assert cache.get_or_compute("key", never("key")) == ("value", "L2")
        assert cache.get_or_compute("key", never("key")) == ("value", "L1")

    def test_an_l3_hit_moves_up_after_a_restart(
        self, made: list[TieredCache], tmp_path: Path, clock: FakeClock
    ) -> None:
        first = tiered(made, tmp_path / "l3", clock)
        first.set("key", {"text": "result"})
        first.close()
        second = tiered(made, tmp_path / "l3", clock)
        assert second.get_or_compute("key", never("key")) == ({"text": "result"}, "L3")
        assert second.get_or_compute("key", never("key")) == ({"text": "result"}, "L1")

    def test_l3_is_written_behind_and_a_read_of_a_pending_write_waits_for_it(
        self, made: list[TieredCache], tmp_path: Path, clock: FakeClock
    ) -> None:
        cache = tiered(made, tmp_path / "l3", clock, l1=LevelSpec(8, 300.0), l2=None)
        for number in range(50):  # many sets while the L3 writer works: batches
            cache.set(f"key-{number}", number)
        push_out_of_l1(cache)  # memory holds none of them any more: they come from L3
        found = [cache.get_or_compute(f"key-{n}", never(f"key-{n}")) for n in range(50)]
        assert found == [(number, "L3") for number in range(50)]
        assert cache.stats().by_level()["L3"]["hits"] == 50  # a figure with one home
        cache.delete("key-7")  # never brought back by a write that was still waiting
        cache.close()
        again = tiered(made, tmp_path / "l3", clock)
        assert "key-7" not in again and again.get("key-49") == 49

    def test_a_ttl_runs_from_the_set_not_from_the_write_behind(
        self, made: list[TieredCache], tmp_path: Path, clock: FakeClock
    ) -> None:
        cache = tiered(made, tmp_path / "l3", clock, l1=LevelSpec(8, 300.0), l2=None)
        cache.set("key", "value", ttl=10.0)
        clock.advance(9.0)
        cache.flush()  # written now, nine seconds after the set
        clock.advance(2.0)
        push_out_of_l1(cache)
        assert cache.get("key", "gone") == "gone"

    def test_exclusive_keeps_a_key_in_one_memory_level(
        self, made: list[TieredCache], clock: FakeClock
    ) -> None:
        cache = tiered(made, None, clock, l1=LevelSpec(8, 300.0), arrangement="exclusive")

        def held() -> int:
            levels = cache.stats().by_level()
            return levels["L1"]["size"] + levels["L2"]["size"]

        cache.set("key", "value")
        assert held() == 1
        push_out_of_l1(cache)
        assert cache.stats().by_level()["L2"]["size"] > 0  # L1's evictions moved down
        assert held() == 201  # each of the 201 keys once
        assert cache.get_or_compute("key", never("key")) == ("value", "L2")
        assert held() == 201

    def test_exclusive_l2_takes_back_its_entry_when_l1_had_admitted_it_too(
        self, made: list[TieredCache], clock: FakeClock
    ) -> None:
        """An entry L2 held, moved up by a hit and admitted by L1, goes back into L2's main
        when L1 evicts it, not through L2's window and duel: L2's counts miss every hit
        L1 served, so that duel refused it and the key was gone a few requests later."""
        hot = 0

        def replay(probe_at: int) -> str:
            """`hot` to L2, up again by a hit, 20 hits in L1, then only 40 other keys; where
            a request for `hot` after `probe_at` of those was served from."""
            cache = tiered(
                made,
                None,
                clock,
                l1=LevelSpec(8, None),
                l2=LevelSpec(16, None),
                arrangement="exclusive",
            )
            cache.set(hot, "value")
            for step in range(10):  # L1 lets it go while L2 has room
                cache.get_or_compute(1_000 + step % 40, str)
            assert cache.get_or_compute(hot, never("hot")) == ("value", "L2")
            for _ in range(20):
                assert cache.get_or_compute(hot, never("hot")) == ("value", "L1")
            for step in range(probe_at):
                cache.get_or_compute(1_000 + step % 40, str)
            return cache.get_or_compute(hot, str)[1]

        coarse = next(step for step in range(0, 2_000, 16) if replay(step) != "L1")
        evicted = next(step for step in range(coarse - 15, coarse + 1) if replay(step) != "L1")
        assert evicted > 100  # L1 kept it a while
        assert replay(evicted) == replay(evicted + 10) == "L2"

    def test_inclusive_keeps_a_copy_in_l2(self, made: list[TieredCache], clock: FakeClock) -> None:
        cache = tiered(made, None, clock, arrangement="inclusive")
        cache.set("key", "value")
        levels = cache.stats().by_level()
        assert levels["L1"]["size"] == levels["L2"]["size"] == 1
        clock.advance(301.0)  # past L1's TTL, within L2's
        assert cache.get_or_compute("key", never("key")) == ("value", "L2")
        assert cache.stats().by_level()["L2"]["size"] == 1

    def test_inclusive_l2_takes_back_a_copy_it_dropped_while_l1_served_the_key(
        self, made: list[TieredCache], clock: FakeClock
    ) -> None:
        """L2 never sees the hits L1 serves, so it drops its copy of a key L1 keeps busy;
        when L1 lets the key go, L2 takes the copy back and serves the key's next request.
        Without that the key left both levels at once: its last request was L1's."""
        hot = 0

        def replay(probe_at: int | None = None) -> int | str:
            """Serve `hot` 600 times from L1 among 80 other keys, then only those keys.
            Return the step at which `hot` is gone from the cache, or where a request for
            it at `probe_at` was served from."""
            cache = tiered(
                made,
                None,
                clock,
                l1=LevelSpec(8, None),
                l2=LevelSpec(32, None),
                arrangement="inclusive",
            )
            for _ in range(15):  # asked for often before it was computed
                cache.get(hot)
            cache.set(hot, "value")
            for step in range(1_800):
                cache.get_or_compute(1_000 + step % 80, str)
                if step < 600:
                    assert cache.get_or_compute(hot, never("hot")) == ("value", "L1")
                if step == probe_at:
                    return cache.get_or_compute(hot, str)[1]
                if hot not in cache:
                    return step
            raise AssertionError("the key outlived the replay")

        gone = replay()
        assert isinstance(gone, int) and gone > 600
        assert replay(probe_at=gone - 1) == "L2"

    def test_stats_count_each_level(
        self, made: list[TieredCache], tmp_path: Path, clock: FakeClock
    ) -> None:
        cache = tiered(made, tmp_path / "l3", clock, arrangement="inclusive")
        cache.set("key", "value")
        cache.get("key")  # L1 hit
        clock.advance(301.0)
        cache.get("key")  # L1 expired, L2 hit
        clock.advance(3_600.0)
        cache.get("key")  # L1 and L2 expired, L3 hit
        cache.get("absent")  # a miss everywhere
        stats = cache.stats()
        levels = stats.by_level()
        assert [levels[name]["hits"] for name in ("L1", "L2", "L3")] == [1, 1, 1]
        assert [levels[name]["misses"] for name in ("L1", "L2", "L3")] == [3, 2, 1]
        assert levels["L1"]["expirations"] == 2
        assert stats.hit_rate == pytest.approx(3 / 4)
        document = json.loads(json.dumps(stats.as_dict()))
        assert document["levels"]["L3"]["hits"] == 1


class TestComputation:
    def test_content_keys_miss_when_a_context_note_changes(
        self, made: list[TieredCache], tmp_path: Path, clock: FakeClock
    ) -> None:
        note = tmp_path / "vault" / "Docs" / "Project Brief.md"
        note.parent.mkdir(parents=True)
        note.write_text("# Brief\nBuild a todo app.\n", encoding="utf-8")
        cache = tiered(made, tmp_path / "vault" / ".vault-bmad" / "cache", clock)
        calls: list[str] = []

        def request_key() -> str:
            return content_key(
                {
                    "runtime": "llm",
                    "model": "llama3.1",
                    "params": {"temperature": 0.2},
                    "persona": "You are Winston, the architect.",
                    "body": "Design the architecture.",
                    "context": {"Docs/Project Brief.md": note.read_text(encoding="utf-8")},
                }
            )

        def run() -> str:
            calls.append("run")
            return f"architecture #{len(calls)}"

        first = cache.get_or_compute(request_key(), run)
        again = cache.get_or_compute(request_key(), run)
        note.write_text("# Brief\nBuild a todo app with sync.\n", encoding="utf-8")
        edited = cache.get_or_compute(request_key(), run)
        assert first == ("architecture #1", "miss")
        assert again == ("architecture #1", "L1")
        assert edited == ("architecture #2", "miss")
        assert len(calls) == 2

    def test_identical_concurrent_computations_make_one_call(
        self, made: list[TieredCache], clock: FakeClock
    ) -> None:
        cache = tiered(made, None, clock)
        release = threading.Event()
        calls: list[int] = []
        results: list[tuple[str, str]] = []

        def slow() -> str:
            calls.append(1)
            release.wait()
            return "answer"

        def ask() -> None:
            results.append(cache.get_or_compute("key", slow))

        threads = [threading.Thread(target=ask) for _ in range(5)]
        for thread in threads:
            thread.start()
        wait_until(lambda: cache.stats().coalesced == 4)
        release.set()
        for thread in threads:
            thread.join()
        assert len(calls) == 1
        assert sorted(results) == [("answer", "coalesced")] * 4 + [("answer", "miss")]
        assert cache.get_or_compute("key", slow) == ("answer", "L1")
        assert cache.stats().computes == 1

    def test_a_failure_reaches_every_waiter_and_is_not_stored(
        self, made: list[TieredCache], tmp_path: Path, clock: FakeClock
    ) -> None:
        cache = tiered(made, tmp_path / "l3", clock)
        release = threading.Event()
        outcomes: list[BaseException | str] = []

        def failing() -> str:
            release.wait()
            raise ConnectionError("the model server went away")

        def ask() -> None:
            try:
                outcomes.append(cache.get_or_compute("key", failing)[0])
            except ConnectionError as error:
                outcomes.append(error)

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
        wait_until(lambda: cache.stats().coalesced == 3)
        release.set()
        for thread in threads:
            thread.join()
        assert len(outcomes) == 4
        assert all(isinstance(outcome, ConnectionError) for outcome in outcomes)
        assert "key" not in cache
        assert cache.stats().failures == 1
        assert cache.get_or_compute("key", lambda: "recovered") == ("recovered", "miss")


class TestPrefetch:
    def test_a_confident_successor_is_pulled_up_before_it_is_asked_for(
        self, made: list[TieredCache], tmp_path: Path, clock: FakeClock
    ) -> None:
        cache = tiered(made, tmp_path / "l3", clock, prefetch=0.7)
        cache.set("context of A", "a")
        cache.set("context of B", "b")
        for _ in range(2):  # A is read, then B: twice
            cache.get("context of A")
            cache.get("context of B")
        clock.advance(301.0)  # L1's copies expire; L3 still has both
        assert cache.get_or_compute("context of A", never("A")) == ("a", "L3")
        assert cache.get_or_compute("context of B", never("B")) == ("b", "L1")
        prefetch = cache.stats().prefetch
        assert prefetch is not None
        assert (prefetch.issued, prefetch.used) == (1, 1)
        assert prefetch.threshold < 0.7  # a used prefetch lowers the bar

    def test_an_unsure_successor_is_left_alone(
        self, made: list[TieredCache], tmp_path: Path, clock: FakeClock
    ) -> None:
        cache = tiered(made, tmp_path / "l3", clock, prefetch=0.7)
        for key in ("A", "B", "C"):
            cache.set(key, key.lower())
        for follower in ("B", "C", "B", "C"):  # after A comes B or C: confidence 0.5
            cache.get("A")
            cache.get(follower)
        clock.advance(301.0)
        cache.get("A")
        assert cache.get_or_compute("B", never("B")) == ("b", "L3")
        prefetch = cache.stats().prefetch
        assert prefetch is not None
        assert prefetch.issued == 0


def test_a_restored_copy_expires_with_the_value_it_copies(clock: FakeClock) -> None:
    """`MemoryCache.restore` (L1 giving L2 back a copy) keeps the copy no longer than the
    value lives, nor than the level's own TTL, and leaves a copy still held as it is."""
    level = MemoryCache(10, 100.0, clock=clock)
    level.restore("short", "value", clock.now + 50.0)
    level.restore("long", "value", clock.now + 500.0)
    level.set("held", "new")
    level.restore("held", "old", clock.now + 500.0)
    level.restore("stale", "value", clock.now)
    assert level.get("held") == "new" and "stale" not in level
    clock.advance(51.0)
    assert level.get("short") is None and level.get("long") == "value"
    clock.advance(50.0)
    assert level.get("long") is None
