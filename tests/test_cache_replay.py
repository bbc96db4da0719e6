"""The cache benchmark: trace loading, policy replays, OPT, prefetch, arrangements, CLI."""

from __future__ import annotations

import gzip
import itertools
import json
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault_bmad.bench.cache_peers import DesignScoreCache, opt_hits
from vault_bmad.bench.cache_replay import (
    compare,
    count_vault_bmad_hits,
    render_table,
    replay_levels,
    replay_prefetch,
)
from vault_bmad.bench.cache_traces import load_trace, loop_trace, read_trace, zipf_trace

IN_PROCESS = ("vault-bmad", "lru", "lfu", "design-score", "opt")  # theine starts a thread


def best_possible_hits(trace: list[int], capacity: int) -> int:
    """Exhaustive search over every admit, bypass and replace choice."""
    best: dict[frozenset[int], int] = {frozenset(): 0}
    for key in trace:
        following: dict[frozenset[int], int] = {}
        for cached, hits in best.items():
            if key in cached:
                choices = [(cached, hits + 1)]
            else:
                choices = [(cached, hits)]
                if len(cached) < capacity:
                    choices.append((cached | {key}, hits))
                else:
                    choices += [((cached - {old}) | {key}, hits) for old in cached]
            for state, score in choices:
                following[state] = max(following.get(state, -1), score)
        best = following
    return max(best.values())


@settings(max_examples=150, deadline=None)
@given(
    trace=st.lists(st.integers(0, 5), min_size=1, max_size=14),
    capacity=st.integers(1, 3),
)
def test_opt_matches_an_exhaustive_search(trace: list[int], capacity: int) -> None:
    assert opt_hits(trace, capacity) == best_possible_hits(trace, capacity)


def scan_polluted_zipf(seed: int = 3) -> list[int]:
    randomness = random.Random(seed)
    trace = zipf_trace(1.0, keys=5_000, requests=20_000, seed=seed)
    scan = iter(range(100_000, 200_000))
    return [next(scan) if randomness.random() < 0.3 else key for key in trace]


def test_compare_reports_every_policy_below_opt() -> None:
    trace = scan_polluted_zipf()
    document = compare("mixed", trace, 200, policies=IN_PROCESS)
    assert (document["trace"], document["capacity"], document["requests"]) == (
        "mixed",
        200,
        len(trace),
    )
    policies = document["policies"]
    assert isinstance(policies, dict)
    assert set(policies) == set(IN_PROCESS)
    ceiling = policies["opt"]["hit_rate"]
    assert all(figures["hit_rate"] <= ceiling for figures in policies.values())
    assert policies["vault-bmad"]["hit_rate"] > policies["lru"]["hit_rate"]
    assert all(figures["gets_per_s"] > 0 for figures in policies.values())
    prefetch = document["prefetch"]
    assert isinstance(prefetch, dict)
    assert set(prefetch) >= {"precision", "coverage", "hit_rate", "threshold"}
    table = render_table(document)
    assert "vault-bmad" in table
    assert "of OPT" in table


def test_prefetch_saves_misses_on_sequential_runs() -> None:
    randomness = random.Random(11)
    records = [range(start * 10, start * 10 + 6) for start in range(60)]
    weights = [1 / (rank + 1) for rank in range(60)]
    trace = [key for record in randomness.choices(records, weights, k=2_000) for key in record]
    baseline = count_vault_bmad_hits(trace, 40)
    outcome = replay_prefetch(trace, 40, baseline_hits=baseline)
    assert outcome.hit_rate > baseline / len(trace)
    assert outcome.precision > 0.5
    assert 0 < outcome.coverage <= 1
    assert outcome.used <= outcome.issued


def test_both_level_arrangements_replay_through_the_real_tier() -> None:
    trace = zipf_trace(0.9, keys=20_000, requests=30_000, seed=5)
    exclusive = replay_levels(trace, 100, 400, "exclusive")
    inclusive = replay_levels(trace, 100, 400, "inclusive")
    assert exclusive["l1_hit_rate"] == inclusive["l1_hit_rate"]  # L1 sees the same requests
    assert 0 < inclusive["l1_hit_rate"] < inclusive["hit_rate"]
    assert 0 < exclusive["l1_hit_rate"] < exclusive["hit_rate"]
    assert inclusive["hit_rate"] > exclusive["hit_rate"]  # the measured winner is the default


def test_the_design_score_cache_stays_within_capacity() -> None:
    cache = DesignScoreCache(10)
    randomness = random.Random(2)
    hits = sum(
        cache.access(randomness.choice([1, 2, 3, randomness.randrange(50)])) for _ in range(300)
    )
    assert 0 < hits < 300
    assert len(cache) == 10
    assert all(0 < cache.score(key) <= 1 for key in cache)


def test_zipf_traces_are_reproducible_and_skewed() -> None:
    first = zipf_trace(1.2, keys=1_000, requests=5_000, seed=9)
    assert first == zipf_trace(1.2, keys=1_000, requests=5_000, seed=9)
    assert first != zipf_trace(1.2, keys=1_000, requests=5_000, seed=10)
    counts = Counter(first)
    assert counts.most_common(1)[0][0] == 0
    assert counts[0] > counts.get(10, 0) > counts.get(500, 0)


def test_loop_traces_repeat_one_order_and_drift_by_their_share() -> None:
    still = load_trace("loop:50")
    assert still == load_trace("loop:50")
    assert sorted(still[:50]) == list(range(50)) != still[:50]  # every note once, shuffled
    assert still[50:100] == still[:50]  # the next run asks in the same order
    drifting = load_trace("loop:100:0.05")
    runs = [drifting[start : start + 100] for start in range(0, 1_000, 100)]
    for before, after in itertools.pairwise(runs):
        assert len(set(after) - set(before)) == 5  # 5% of the notes have new keys
    with pytest.raises(ValueError, match="share"):
        loop_trace(10, changed_share=1.5)


def test_a_trace_file_reads_back_in_order(tmp_path: Path) -> None:
    path = tmp_path / "tiny.keys.gz"
    with gzip.open(path, "wt") as stream:
        stream.write("5\n3\n5\n8\n")
    assert read_trace(path) == [5, 3, 5, 8]
    assert load_trace(str(path)) == [5, 3, 5, 8]


def test_the_cli_prints_the_benchmark_json(tmp_path: Path) -> None:
    path = tmp_path / "mixed.keys.gz"
    with gzip.open(path, "wt") as stream:
        stream.write("\n".join(map(str, scan_polluted_zipf(seed=4)[:5_000])))
    command = [sys.executable, "-m", "vault_bmad.cli", "bench", "cache", "--trace", str(path)]
    done = subprocess.run(
        [*command, "--capacity", "100", "--format", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    document = json.loads(done.stdout)
    assert document["trace"] == "mixed"
    assert document["requests"] == 5_000
    policies = document["policies"]
    assert set(policies) == {"vault-bmad", "lru", "lfu", "theine", "design-score", "opt"}
    assert all(
        0 <= figures["hit_rate"] <= policies["opt"]["hit_rate"] for figures in policies.values()
    )
    failed = subprocess.run(
        [*command[:-1], str(tmp_path / "absent.gz"), "--capacity", "10"],
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1
    assert "cannot read trace" in failed.stderr
