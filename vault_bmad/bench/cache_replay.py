"""Replay a request trace through each policy and compare hit rates (the cache benchmark).

Every policy sees the same trace and capacity. A miss inserts the key (a policy may then
refuse it). `opt` is Bélády's MIN with bypass, the ceiling. `gets_per_s` is the replay's
own speed, a rough guide only: peers are C extensions or pure Python in varying degrees.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

from cachetools import LFUCache, LRUCache

from vault_bmad.bench.cache_peers import DesignScoreCache, opt_hits
from vault_bmad.cache.policy import AdaptiveTinyLfu, Entry
from vault_bmad.cache.prefetch import Prefetcher
from vault_bmad.cache.sketch import spread_hash
from vault_bmad.cache.tiered import Arrangement, LevelSpec, TieredCache

Timer = Callable[[], float]
_MISSING = object()


@dataclass(frozen=True)
class PolicyResult:
    hits: int
    requests: int
    seconds: float

    @property
    def hit_rate(self) -> float:
        return self.hits / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, object]:
        speed = self.requests / self.seconds if self.seconds > 0 else None
        return {"hit_rate": round(self.hit_rate, 6), "hits": self.hits, "gets_per_s": speed}


def count_vault_bmad_hits(trace: Sequence[int], capacity: int) -> int:
    policy = AdaptiveTinyLfu(capacity)
    stored: dict[Hashable, Entry] = {}
    on_miss, insert = policy.on_miss, policy.insert
    hits = 0
    for key in trace:
        entry = stored.get(key)
        if entry is not None:
            entry.hits += 1
            hits += 1
            continue
        key_hash = spread_hash(key)
        on_miss(key_hash)
        entry = stored[key] = Entry(key, None, key_hash)
        for dropped in insert(entry):
            del stored[dropped.key]
    return hits


def count_cachetools_hits(trace: Sequence[int], capacity: int, kind: str) -> int:
    cache: LRUCache[int, bool] | LFUCache[int, bool] = (
        LRUCache(capacity) if kind == "lru" else LFUCache(capacity)
    )
    get = cache.get
    hits = 0
    for key in trace:
        if get(key):
            hits += 1
        else:
            cache[key] = True
    return hits


def count_theine_hits(trace: Sequence[int], capacity: int) -> int:
    """W-TinyLFU as theine implements it (imported here: importing it starts a thread)."""
    from theine import Cache

    cache: Cache[int, bool] = Cache(capacity, nolock=True)
    get, put = cache.get, cache.set
    hits = 0
    for key in trace:
        if get(key)[1]:
            hits += 1
        else:
            put(key, True)
    cache.clear()
    cache.close()
    return hits


def count_design_score_hits(trace: Sequence[int], capacity: int) -> int:
    access = DesignScoreCache(capacity).access
    return sum(1 for key in trace if access(key))


POLICIES: dict[str, Callable[[Sequence[int], int], int]] = {
    "vault-bmad": count_vault_bmad_hits,
    "lru": lambda trace, capacity: count_cachetools_hits(trace, capacity, "lru"),
    "lfu": lambda trace, capacity: count_cachetools_hits(trace, capacity, "lfu"),
    "theine": count_theine_hits,
    "design-score": count_design_score_hits,
    "opt": opt_hits,
}


def replay(
    name: str, trace: Sequence[int], capacity: int, *, timer: Timer = time.perf_counter
) -> PolicyResult:
    started = timer()
    hits = POLICIES[name](trace, capacity)
    return PolicyResult(hits, len(trace), timer() - started)


@dataclass(frozen=True)
class PrefetchResult:
    hit_rate: float  # with prefetch
    issued: int
    used: int
    wasted: int
    precision: float  # share of prefetched entries that were used
    coverage: float  # share of the misses without prefetch that prefetch saved
    threshold: float  # where the adaptive threshold ended

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def replay_prefetch(
    trace: Sequence[int],
    capacity: int,
    *,
    baseline_hits: int,
    threshold: float = 0.7,
    model_keys: int = 100_000,
) -> PrefetchResult:
    """The vault-bmad policy with successor prefetch; `baseline_hits` is the run without."""
    policy = AdaptiveTinyLfu(capacity)
    prefetcher = Prefetcher(threshold, max_keys=model_keys, max_pending=capacity)
    stored: dict[Hashable, Entry] = {}
    hits = 0

    def store(key: Hashable, key_hash: int) -> None:
        entry = stored[key] = Entry(key, None, key_hash)
        for dropped in policy.insert(entry):
            del stored[dropped.key]
            prefetcher.on_evict(dropped.key)

    for key in trace:
        entry = stored.get(key)
        if entry is not None:
            entry.hits += 1
            hits += 1
            prefetcher.on_hit(key)
        else:
            key_hash = spread_hash(key)
            policy.on_miss(key_hash)
            store(key, key_hash)
        for successor in prefetcher.observe(key):
            if successor not in stored:
                store(successor, spread_hash(successor))
                prefetcher.issued(successor)
    stats = prefetcher.stats()
    baseline_misses = len(trace) - baseline_hits
    return PrefetchResult(
        hit_rate=hits / len(trace) if trace else 0.0,
        issued=stats.issued,
        used=stats.used,
        wasted=stats.wasted,
        precision=stats.precision,
        coverage=stats.used / baseline_misses if baseline_misses else 0.0,
        threshold=stats.threshold,
    )


def replay_levels(
    trace: Sequence[int], l1_capacity: int, l2_capacity: int, arrangement: Arrangement
) -> dict[str, float]:
    """Hit rates of the real L1+L2 tier (no TTL, no prefetch) in one arrangement."""
    cache = TieredCache(
        None,
        l1=LevelSpec(l1_capacity, None),
        l2=LevelSpec(l2_capacity, None),
        arrangement=arrangement,
        prefetch_threshold=None,
    )
    for key in trace:
        if cache.get(key, _MISSING) is _MISSING:
            cache.set(key, True)
    stats = cache.stats()
    return {"l1_hit_rate": stats.levels[0].hit_rate, "hit_rate": stats.hit_rate}


def compare(
    trace_name: str,
    trace: Sequence[int],
    capacity: int,
    *,
    policies: Sequence[str] = tuple(POLICIES),
    prefetch: bool = True,
    timer: Timer = time.perf_counter,
) -> dict[str, object]:
    """The benchmark's JSON document for one trace and capacity."""
    results = {name: replay(name, trace, capacity, timer=timer) for name in policies}
    document: dict[str, object] = {
        "trace": trace_name,
        "capacity": capacity,
        "requests": len(trace),
        "policies": {name: result.as_dict() for name, result in results.items()},
    }
    if prefetch:
        baseline = results.get("vault-bmad") or replay("vault-bmad", trace, capacity, timer=timer)
        outcome = replay_prefetch(trace, capacity, baseline_hits=baseline.hits)
        document["prefetch"] = outcome.as_dict()
    return document


def render_table(document: dict[str, object]) -> str:
    """The `compare` document as aligned text: hit rate, share of OPT's hits, speed."""
    policies = cast(dict[str, dict[str, Any]], document["policies"])
    best = policies.get("opt", {}).get("hits")
    lines = [
        f"trace {document['trace']}, capacity {document['capacity']:,}, "
        f"{document['requests']:,} requests",
        f"{'policy':<14}{'hit rate':>10}{'of OPT':>9}{'gets/s':>12}",
    ]
    for name, figures in policies.items():
        share = f"{figures['hits'] / best:.1%}" if best else "-"
        speed = f"{figures['gets_per_s']:,.0f}" if figures["gets_per_s"] else "-"
        lines.append(f"{name:<14}{figures['hit_rate']:>10.2%}{share:>9}{speed:>12}")
    prefetch = cast(dict[str, Any] | None, document.get("prefetch"))
    if prefetch is not None:
        lines.append(
            f"prefetch: hit rate {prefetch['hit_rate']:.2%}, "
            f"precision {prefetch['precision']:.1%}, coverage {prefetch['coverage']:.2%}, "
            f"threshold {prefetch['threshold']:.2f}"
        )
    return "\n".join(lines)
