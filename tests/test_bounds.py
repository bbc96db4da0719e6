"""Bounded work for every request: whatever number a request names, its answer and the work
behind it stay within what the store holds, over a real service on loopback with a real
SQLite store holding 400 days of history."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tests.dashboard_history import cache_samples, history, record
from tests.waiting import wait_until
from vault_bmad.cli import main
from vault_bmad.config import STATE_DB, load_settings
from vault_bmad.metrics.queries import earliest_attempt
from vault_bmad.metrics.report import UNCUT_SPAN_S
from vault_bmad.metrics.store import Store
from vault_bmad.runner import run_vault
from vault_bmad.service import Service
from vault_bmad.web.api import MAX_BARS, MAX_QUERY_WORDS, MAX_TASKS
from vault_bmad.web.ranges import MAX_BUCKETS

DAY_S = 86_400.0
HISTORY_S = 400 * DAY_S
# In the order they are asked, the smallest first: on an unbounded service the first
# already answers with 14,000 buckets, the last would take more than 10 GB.
HUGE_SPANS = ("100000d", "10000000d", "99999999999d", "99999999999999999999w")
RANGED = ("/api/metrics", "/api/cache", "/api/agents", "/api/analysis", "/api/timeline")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    vault = tmp_path_factory.mktemp("bounds") / "vault"
    (vault / "Agents").mkdir(parents=True)
    (vault / "Tasks").mkdir()
    (vault / "Agents/Writer.md").write_text("---\ntype: agent\n---\nWrites.\n")
    (vault / "Tasks/Hello.md").write_text("---\ntype: task\n---\nSay hello.\n")
    env = {"XDG_CONFIG_HOME": str(vault.parent / "xdg")}
    settings = load_settings(vault, None, env, overrides={"port": 0, "cache_l1_size": 0})
    running = Service(vault, settings)
    running.start()
    try:
        wait_until(lambda: [t.status for t in running.snapshot().tasks] == ["done"])
        now = time.time()
        record(
            running.store,
            history(now, 400, ("writer",), span_s=HISTORY_S),
            cache_samples(now, 30),
        )
        yield running
    finally:
        running.stop()


def longest_series(value: object) -> int:
    """The most points any trace of any chart in an answer has."""
    if isinstance(value, dict):
        own = [len(v) for k, v in value.items() if k in ("x", "y", "z") and isinstance(v, list)]
        return max([*own, *(longest_series(v) for v in value.values())], default=0)
    if isinstance(value, list):
        return max((longest_series(v) for v in value), default=0)
    return 0


def get(service: Service, path: str) -> httpx.Response:
    return httpx.get(service.url + path.lstrip("/"), timeout=30)


@pytest.mark.parametrize("endpoint", RANGED)
def test_a_span_past_the_history_is_cut_to_it(served: Service, endpoint: str) -> None:
    earliest = earliest_attempt(served.store)
    assert earliest is not None and earliest < time.time() - HISTORY_S + DAY_S
    everything = get(served, f"{endpoint}?since=all")
    assert everything.status_code == 200
    for span in HUGE_SPANS:
        answer = get(served, f"{endpoint}?since={span}")
        assert answer.status_code == 200, (span, answer.text[:200])
        body = answer.json()
        period = body.get("range") or {"since": body["since"], "bucket_s": 7 * DAY_S}
        assert period["since"] >= earliest - max(period["bucket_s"], 60), span
        if endpoint == "/api/timeline":  # bars, one per attempt: the latest MAX_BARS
            assert body["shown"] <= MAX_BARS and longest_series(body) <= 3 * MAX_BARS
        else:  # one point per bucket
            assert longest_series(body) <= MAX_BUCKETS + 1, span
        assert len(answer.content) <= 1.2 * len(everything.content) + 5_000, span


def peak_rss(pid: int) -> int:
    """The most memory the process has held, in bytes (Linux's VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def test_a_huge_span_costs_a_serving_process_what_all_of_history_does(sample_vault: Path) -> None:
    """`vault-bmad serve` in its own process: its peak memory after the huge spans stays
    that of answering for all of history (on an unbounded one, 10000000d took 1.1 GB)."""
    run_vault(sample_vault, load_settings(sample_vault))
    with Store(sample_vault / ".vault-bmad" / STATE_DB) as store:
        record(store, history(time.time(), 400, ("dev", "qa"), span_s=HISTORY_S), [])
    env = {**os.environ, "XDG_CONFIG_HOME": str(sample_vault.parent / "xdg")}
    command = [sys.executable, "-m", "vault_bmad.cli", "serve", str(sample_vault)]
    with subprocess.Popen(
        [*command, "--port", "0", "--format", "json"], env=env, stdout=subprocess.PIPE, text=True
    ) as serving:
        try:
            assert serving.stdout is not None
            url = json.loads(serving.stdout.readline())["dashboard"]
            for _ in range(3):
                assert httpx.get(url + "api/metrics?since=all", timeout=30).status_code == 200
            settled = peak_rss(serving.pid)
            for span in HUGE_SPANS:
                answer = httpx.get(url + f"api/metrics?since={span}", timeout=60)
                assert answer.status_code == 200
                assert peak_rss(serving.pid) <= settled + 40 * 2**20, span
        finally:
            serving.terminate()
            serving.wait(timeout=30)


def test_a_span_within_a_week_is_taken_as_asked(served: Service) -> None:
    body = get(served, "/api/metrics?since=7d").json()
    assert body["range"]["until"] - body["range"]["since"] >= UNCUT_SPAN_S
    assert get(served, "/api/metrics?since=1h").json()["range"]["bucket_s"] == 60


def test_counts_and_words_have_limits(served: Service) -> None:
    listed = get(served, "/api/tasks?limit=1000000000000").json()
    assert len(listed["tasks"]) <= MAX_TASKS
    words = " ".join(f"w{n}" for n in range(MAX_QUERY_WORDS + 1))
    refused = get(served, f"/api/tasks?q={words}")
    assert refused.status_code == 400 and str(MAX_QUERY_WORDS) in refused.json()["error"]
    assert get(served, "/api/tasks?q=hello").json()["total"] == 1
    too_long = get(served, "/api/metrics?since=" + "9" * 5000 + "d")
    assert too_long.status_code == 400 and len(too_long.content) < 1_000


def test_report_on_a_huge_span_covers_the_history(sample_vault: Path) -> None:
    run_vault(sample_vault, load_settings(sample_vault))
    runner = CliRunner()
    done = runner.invoke(
        main, ["report", str(sample_vault), "--since", "999999d", "--format", "json"]
    )
    assert done.exit_code == 0, done.output
    written = json.loads(done.output)
    assert (sample_vault / written["report"]).is_file()
    covered = written["overall"]["until"] - written["overall"]["since"]
    assert UNCUT_SPAN_S <= covered <= UNCUT_SPAN_S + 120  # a run moments ago: a week
    refused = runner.invoke(main, ["report", str(sample_vault), "--since", "9" * 40 + "d"])
    assert refused.exit_code == 2 and "not a span of time" in refused.output
