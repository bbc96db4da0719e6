"""One set of attempts, every place that shows its figures: the report note, the JSON API the
dashboard draws, and Prometheus `/metrics`. A real service runs real tasks (an LLM agent on
the loopback server, one second a call) into its real store, and each place must read the
same throughput, latency, utilization, hit rate, wait share and critical path."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import WriteNote
from tests.dashboard_history import cache_samples, history, record
from tests.waiting import wait_until
from vault_bmad.config import load_settings
from vault_bmad.metrics.report import WrittenReport, report_span
from vault_bmad.runtimes.loopback_llm import LoopbackLLM
from vault_bmad.service import Service
from vault_bmad.vault.writer import NoteWriter
from vault_bmad.web.app import create_app

TASKS = 8


def report(service: Service) -> WrittenReport:
    """`vault-bmad report --since all`, on the service's own store."""
    assert service.orchestrator is not None
    service.store.flush()
    return report_span(
        service.store,
        service.orchestrator.definitions,
        NoteWriter(service.vault),
        None,
        now=time.time(),
    )


@pytest.fixture
def solo(vault: Path, write: WriteNote) -> Iterator[Service]:
    """An agent of capacity 1 given eight one-second tasks at once."""
    write("Agents/Solo.md", "---\ntype: agent\nruntime: llm\ncapacity: 1\n---\nAnswers.\n")
    for number in range(TASKS):
        write(f"Tasks/T{number}.md", f"---\ntype: task\nagent: solo\n---\nQuestion {number}.\n")
    with LoopbackLLM(latency=lambda: 1.0) as llm:
        overrides = {"port": 0, "debounce_ms": 50, "llm_base_url": llm.base_url}
        running = Service(vault, load_settings(vault, None, overrides=overrides))
        running.start()
        try:
            wait_until(lambda: running.snapshot().counts() == {"done": TASKS})
            yield running
        finally:
            running.stop()


def test_a_busy_agent_reads_busy_and_every_place_agrees(solo: Service) -> None:
    client = create_app(solo).test_client()
    first = solo.store.attempts(task_id="tasks/t0")[0]
    # Run the first task again, 8 s after it ended: the critical path must not span the gap.
    wait_until(lambda: time.time() >= first.ended_at + 8.0)
    assert solo.rerun("tasks/t0")
    wait_until(lambda: len(solo.store.attempts(task_id="tasks/t0")) == 2)
    wait_until(lambda: solo.snapshot().counts() == {"done": TASKS})
    solo.store.flush()
    attempts = solo.store.attempts()
    assert len(attempts) == TASKS + 1

    agents = {a["id"]: a for a in client.get("/api/agents?since=all").get_json()["agents"]}
    assert agents["solo"]["period"]["utilization"] >= 0.6  # busy all the time it had work
    body: dict[str, Any] = client.get("/api/metrics?since=all").get_json()
    totals = body["totals"]
    written = report(solo)
    o = written.analysis.overall
    assert totals["throughput_per_min"] == pytest.approx(o.throughput_per_min, rel=0.1)
    assert totals["throughput_per_min"] == pytest.approx(o.throughput_per_min)  # in fact equal
    assert totals["work_s"] == pytest.approx(o.work_s)
    assert totals["latency_s"] == o.latency_s
    assert totals["utilization"] == pytest.approx(o.utilization)
    assert totals["wait_share"] == pytest.approx(o.wait_share)
    assert totals["hit_rate"] == pytest.approx(o.hit_rate)
    (agent,) = written.analysis.agents
    assert agent.utilization == pytest.approx(agents["solo"]["period"]["utilization"])

    # Every lookup counted, the first sample's too: at least one L1 lookup per attempt.
    levels = {level["level"]: level for level in body["levels"]}
    assert levels["L1"]["source"] == "samples"  # the cache's own counters, the live ones too
    assert levels["L1"]["hits"] + levels["L1"]["misses"] >= len(attempts)

    # The critical path is one run of one task: no idle time, no task twice.
    analysis = client.get("/api/analysis?since=all").get_json()
    assert 0 < analysis["critical_path_s"] <= 3.0
    assert written.analysis.critical_path_s <= 3.0
    assert "split_task" not in {r.action for r in written.analysis.recommendations}
    note = (solo.vault / written.path).read_text(encoding="utf-8")
    assert f"| throughput | {o.throughput_per_min:.2f} tasks/min" in note


def test_one_history_reads_the_same_in_the_report_the_api_and_prometheus(
    vault: Path, write: WriteNote
) -> None:
    write("Agents/Writer.md", "---\ntype: agent\ncapacity: 2\n---\nWrites.\n")
    write("Agents/Reviewer.md", "---\ntype: agent\n---\nReviews.\n")
    overrides = {"port": 0, "cache_l1_size": 0}  # the recorded samples are the only ones
    service = Service(vault, load_settings(vault, None, overrides=overrides))
    service.start()
    try:
        now = time.time()
        record(service.store, history(now, 400, ("writer", "reviewer")), cache_samples(now, 40))
        client: FlaskClient = create_app(service).test_client()
        body = client.get("/api/metrics?since=all").get_json()
        agents = client.get("/api/agents?since=all").get_json()["agents"]
        written = report(service)
        o = written.analysis.overall
        totals = body["totals"]
        for name in ("attempts", "done", "failed", "latency_s"):
            assert totals[name] == getattr(o, name), name
        for name in ("throughput_per_min", "utilization", "wait_share", "hit_rate", "work_s"):
            assert totals[name] == pytest.approx(getattr(o, name)), name
        by_agent = {a.agent: a for a in written.analysis.agents}
        for agent in agents:
            mine, theirs = agent["period"], by_agent[agent["id"]]
            assert mine["utilization"] == pytest.approx(theirs.utilization)
            assert mine["latency_s"] == theirs.latency_s
        levels = [(lv["level"], lv["hits"], lv["misses"]) for lv in body["levels"]]
        assert levels == [(lv.level, lv.hits, lv.misses) for lv in written.analysis.levels]

        # /metrics: the last hour's figures, as /api/metrics reads the same hour
        hour = client.get("/api/metrics?since=1h").get_json()["totals"]
        exposition = client.get("/metrics").data.decode()
        gauges = {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in exposition.splitlines()
            if line and not line.startswith("#")
        }
        assert gauges["vault_bmad_throughput_per_minute"] == pytest.approx(
            hour["throughput_per_min"]
        )
        assert gauges['vault_bmad_utilization{agent=""}'] == pytest.approx(hour["utilization"])
        assert "_created" not in exposition
        for status in ("todo", "queued", "running", "done", "failed", "blocked", "invalid"):
            assert f'vault_bmad_tasks_current{{status="{status}"}} 0.0' in exposition
    finally:
        service.stop()
