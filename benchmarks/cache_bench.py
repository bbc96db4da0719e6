"""Cache benchmark: policy hit rates against peers and OPT, level arrangement, L1 speed.

Prints one JSON document. `--markdown` prints the tables for docs/benchmarks.md instead.
`--quick` runs the two small traces at one capacity and a short speed test. Trace files
come from `--traces DIR`, by default benchmarks/traces/, which holds gli and multi2; the
full run also needs oltp.keys.gz there or in DIR (see benchmarks/traces/README.md).
Zipf (`zipf:ALPHA`) and loop (`loop:NOTES`) traces are generated, seeded, in the run.

Besides the trace table: loops of 1,000 notes at cache sizes a little and much smaller
than the loop, still and with 1% of the notes changing per run (`loop_sizes`); and the
miss path's speed against an OrderedDict LRU and cachetools, each behind a lock as a
level's is (`miss_speed`).
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cachetools import LRUCache

from vault_bmad.bench.cache_replay import compare, replay_levels
from vault_bmad.bench.cache_traces import load_trace
from vault_bmad.cache.memory import MemoryCache

TRACES = Path(__file__).resolve().parent / "traces"
TRACE_SPECS = [
    "gli",
    "multi2",
    "oltp",
    "zipf:0.9",
    "zipf:1.0",
    "zipf:1.2",
    "loop:1250",
    "loop:12500",
]
QUICK_SPECS = ["gli", "multi2"]
GENERATED = ("zipf:", "loop:")
LOOP_SPECS = ["loop:1000", "loop:1000:0.01"]  # the second: 1% of the notes change per run
LOOP_SIZES = [250, 500, 667, 800, 950]  # cache sizes against those loops of 1,000 notes
LOOP_PEERS = ("vault-bmad", "lru", "theine", "opt")


def trace_sources(specs: list[str], folder: Path) -> dict[str, str]:
    """Each spec's `load_trace` argument: a generated one as it is, NAME as DIR/NAME.keys.gz."""
    return {
        spec: spec if spec.startswith(GENERATED) else str(folder / f"{spec}.keys.gz")
        for spec in specs
    }


def policy_tables(sources: dict[str, str], capacities: list[int]) -> list[dict[str, object]]:
    documents = []
    for spec, source in sources.items():
        trace = load_trace(source)
        for capacity in capacities:
            documents.append(compare(spec, trace, capacity))
    return documents


def loop_sizes(specs: list[str], sizes: list[int]) -> list[dict[str, object]]:
    """Each loop at each cache size: vault-bmad, LRU, theine and OPT."""
    documents = []
    for spec in specs:
        trace = load_trace(spec)
        for size in sizes:
            documents.append(compare(spec, trace, size, policies=LOOP_PEERS, prefetch=False))
    return documents


def arrangements(sources: dict[str, str], l1: int, l2: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for spec, source in sources.items():
        trace = load_trace(source)
        row: dict[str, object] = {"trace": spec, "l1": l1, "l2": l2}
        for arrangement in ("inclusive", "exclusive"):
            row[arrangement] = replay_levels(trace, l1, l2, arrangement)
        rows.append(row)
    return rows


def gets_per_second(get: Callable[[str], object], keys: list[str], rounds: int) -> float:
    """Median over `rounds` of single-threaded hit lookups per second."""
    speeds = []
    for _ in range(rounds):
        started = time.perf_counter()
        for key in keys:
            get(key)
        speeds.append(len(keys) / (time.perf_counter() - started))
    return statistics.median(speeds)


def threaded_gets_per_second(get: Callable[[str], object], keys: list[str], threads: int) -> float:
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for key in keys:
            get(key)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    return threads * len(keys) / (time.perf_counter() - started)


def miss_speed(rounds: int, misses: int) -> dict[str, float]:
    """Misses per second (a get that misses, then the set) on 1,000 entries, every key new:
    the level's whole miss path against an OrderedDict LRU and cachetools' LRUCache, each
    behind a lock; medians of interleaved rounds."""
    keys = [f"task-result-{number}" for number in range(misses)]
    lock = threading.Lock()

    def ours() -> None:
        cache = MemoryCache(1_000, 300.0)
        get, put = cache.get, cache.set
        for key in keys:
            if get(key) is None:
                put(key, key)

    def ordered_dict() -> None:
        cache: OrderedDict[str, str] = OrderedDict()
        for key in keys:
            with lock:
                value = cache.get(key)
                if value is not None:
                    cache.move_to_end(key)
            if value is None:
                with lock:
                    cache[key] = key
                    if len(cache) > 1_000:
                        cache.popitem(last=False)

    def cachetools_lru() -> None:
        cache: LRUCache[str, str] = LRUCache(1_000)
        for key in keys:
            with lock:
                value = cache.get(key)
            if value is None:
                with lock:
                    cache[key] = key

    peers: dict[str, Callable[[], None]] = {
        "vault-bmad MemoryCache get + set": ours,
        "OrderedDict LRU + lock": ordered_dict,
        "cachetools LRUCache + lock": cachetools_lru,
    }
    samples: dict[str, list[float]] = {name: [] for name in peers}
    for _ in range(rounds):
        for name, run in peers.items():
            started = time.perf_counter()
            run()
            samples[name].append(misses / (time.perf_counter() - started))
    return {name: statistics.median(speeds) for name, speeds in samples.items()}


def l1_speed(rounds: int, repeat: int) -> dict[str, object]:
    """L1 hits against peers holding the same 1,000 entries, interleaved round by round."""
    from theine import Cache  # imported late: importing theine starts a thread

    keys = [f"task-result-{number}" for number in range(1_000)]
    ours = MemoryCache(1_000, 300.0)
    lru: LRUCache[str, str] = LRUCache(1_000)
    lock = threading.Lock()
    theine: Cache[str, str] = Cache(1_000)
    plain: dict[str, str] = {}
    for key in keys:
        ours.set(key, key)
        lru[key] = key
        theine.set(key, key)
        plain[key] = key

    def locked_lru(key: str) -> object:
        with lock:
            return lru.get(key)

    def locked_dict(key: str) -> object:
        with lock:
            return plain.get(key)

    peers: dict[str, Callable[[str], object]] = {
        "vault-bmad MemoryCache.get": ours.get,
        "cachetools LRUCache.get + lock": locked_lru,
        "cachetools LRUCache.get, no lock": lru.get,
        "theine Cache.get": theine.get,
        "dict.get + lock (floor)": locked_dict,
    }
    trace = keys * repeat
    samples: dict[str, list[float]] = {name: [] for name in peers}
    for _ in range(rounds):
        for name, get in peers.items():
            samples[name].append(gets_per_second(get, trace, 1))
    result: dict[str, object] = {
        name: statistics.median(speeds) for name, speeds in samples.items()
    }
    result["vault-bmad, 4 threads (total)"] = statistics.median(
        threaded_gets_per_second(ours.get, trace, 4) for _ in range(rounds)
    )
    theine.close()
    return result


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "| trace | capacity | vault-bmad | LRU | LFU | W-TinyLFU (theine) | design score | OPT "
        "| vault-bmad / OPT | prefetch: hit rate, precision, coverage |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for document in report["policies"]:
        rates = {name: figures["hit_rate"] for name, figures in document["policies"].items()}
        prefetch = document["prefetch"]
        lines.append(
            f"| {document['trace']} | {document['capacity']:,} | **{rates['vault-bmad']:.2%}** "
            f"| {rates['lru']:.2%} | {rates['lfu']:.2%} | {rates['theine']:.2%} "
            f"| {rates['design-score']:.2%} | {rates['opt']:.2%} "
            f"| {rates['vault-bmad'] / rates['opt']:.1%} "
            f"| {prefetch['hit_rate']:.2%}, {prefetch['precision']:.0%}, "
            f"{prefetch['coverage']:.2%} |"
        )
    lines += ["", "| trace | L1 + L2 | inclusive: L1, total | exclusive: L1, total |"]
    lines.append("|---|---|---:|---:|")
    for row in report["arrangements"]:
        inclusive, exclusive = row["inclusive"], row["exclusive"]
        lines.append(
            f"| {row['trace']} | {row['l1']:,} + {row['l2']:,} "
            f"| {inclusive['l1_hit_rate']:.2%}, **{inclusive['hit_rate']:.2%}** "
            f"| {exclusive['l1_hit_rate']:.2%}, {exclusive['hit_rate']:.2%} |"
        )
    lines += [
        "",
        "| loop | cache size | vault-bmad | LRU | theine | OPT | vault-bmad / OPT | theine / OPT |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for document in report["loop_sizes"]:
        rates = {name: figures["hit_rate"] for name, figures in document["policies"].items()}
        lines.append(
            f"| {document['trace']} | {document['capacity']:,} "
            f"| **{rates['vault-bmad']:.2%}** | {rates['lru']:.2%} "
            f"| {rates['theine']:.2%} | {rates['opt']:.2%} "
            f"| {rates['vault-bmad'] / rates['opt']:.1%} | {rates['theine'] / rates['opt']:.1%} |"
        )
    lines += ["", "| L1 hit lookups, 1,000 entries | gets/s (median) |", "|---|---:|"]
    for name, speed in report["l1_speed"].items():
        lines.append(f"| {name} | {speed:,.0f} |")
    lines += ["", "| misses, 1,000 entries, every key new | misses/s (median) |", "|---|---:|"]
    for name, speed in report["miss_speed"].items():
        lines.append(f"| {name} | {speed:,.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument(
        "--traces",
        type=Path,
        default=TRACES,
        help=f"folder of the NAME.keys.gz trace files (default: {TRACES})",
    )
    options = parser.parse_args()
    sources = trace_sources(QUICK_SPECS if options.quick else TRACE_SPECS, options.traces)
    missing = [s for s in sources.values() if not s.startswith(GENERATED) and not Path(s).is_file()]
    if missing:
        parser.error(
            f"no trace file {', '.join(missing)}; give the folder that holds the traces with"
            " --traces DIR (benchmarks/traces/README.md says where each trace comes from)"
        )
    capacities = [1_000] if options.quick else [1_000, 10_000]
    report = {
        "policies": policy_tables(sources, capacities),
        "arrangements": arrangements(sources, 1_000, 10_000),
        "loop_sizes": loop_sizes(LOOP_SPECS[:1], [800])
        if options.quick
        else loop_sizes(LOOP_SPECS, LOOP_SIZES),
        "l1_speed": l1_speed(
            rounds=3 if options.quick else 7, repeat=100 if options.quick else 500
        ),
        "miss_speed": miss_speed(
            rounds=3 if options.quick else 7, misses=20_000 if options.quick else 200_000
        ),
    }
    print(markdown(report) if options.markdown else json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
