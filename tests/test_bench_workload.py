"""`vault-bmad bench workload`: its JSON shape and sanity on a tiny workload, not its speed."""

from __future__ import annotations

from pathlib import Path

import frontmatter
import pytest

from vault_bmad.bench.fleet_llm import FleetLLM, FleetProcess
from vault_bmad.bench.peers import call_with_failover
from vault_bmad.bench.workload import SYSTEMS, BenchPlan, run_workload
from vault_bmad.bench.workload_spec import (
    FLEET,
    BenchTask,
    Degradation,
    base_latency_s,
    lower_bound,
    make_tasks,
    model_of,
    slot_count,
    write_vault,
)
from vault_bmad.errors import AttemptFailed
from vault_bmad.model.validate import build_definitions
from vault_bmad.runtimes.base import RunRequest
from vault_bmad.runtimes.llm import LlmRuntime
from vault_bmad.vault.index import VaultIndex

FIGURES = {"throughput_per_min", "latency_p50_ms", "latency_p95_ms", "hit_rate", "makespan_s"}


def test_the_json_has_every_system_and_sane_figures() -> None:
    document = run_workload(BenchPlan(tasks=16, scale=0.005, repeats=1, seed=3))
    assert set(document["systems"]) == set(SYSTEMS)
    assert document["scale"] == 0.005
    bound = document["lower_bound_makespan_s"]
    assert bound == max(document["lower_bound"].values()) > 0
    for name, figures in document["systems"].items():
        assert set(figures) >= FIGURES, name
        assert 0 <= figures["hit_rate"] <= 1, name
        assert figures["done"] == 16, name
        assert figures["makespan_s"] >= bound, name
        assert figures["latency_p95_ms"] >= figures["latency_p50_ms"] >= 0, name
        assert figures["throughput_per_min"] == pytest.approx(
            16 / figures["makespan_s"] * 60, rel=0.01
        )
    assert document["systems"]["baseline"]["hit_rate"] == 0  # no cache: a call per task
    assert set(document["ratios"]) >= {"throughput_over_baseline", "makespan_over_lower_bound"}


def test_the_workload_repeats_requests_and_has_chains() -> None:
    tasks = make_tasks(seed=5, n_tasks=120)
    assert len(tasks) == 120
    requests = [(t.marker, t.agent) for t in tasks]
    assert len(set(requests)) < len(requests) * 0.6  # repeats, for the cache to serve
    ids = {t.id for t in tasks}
    assert any(len(t.requires) == 2 for t in tasks)  # a diamond joins
    seen: set[str] = set()
    for task in tasks:  # topological order
        assert set(task.requires) <= seen <= ids
        seen.add(task.id)


def test_the_lower_bound_is_the_longest_chain_or_the_work_over_slots() -> None:
    chain = (
        BenchTask("a", "a", "ada", None, ()),
        BenchTask("b", "b", "ada", None, ("a",)),
        BenchTask("c", "a", "ada", None, ()),  # a repeat of a: no work of its own
    )
    bound = lower_bound(chain)
    assert bound.critical_path_s == pytest.approx((base_latency_s("a") + base_latency_s("b")) / 2)
    work = (base_latency_s("a") + base_latency_s("b")) * 0.5
    assert bound.work_over_capacity_s == pytest.approx(work / slot_count())
    assert bound.busiest_agent_s == pytest.approx(work / 3)  # ada has three slots
    assert bound.seconds == bound.critical_path_s


def test_the_vault_is_valid_and_routes_by_name_or_expertise(tmp_path: Path) -> None:
    tasks = make_tasks(seed=2, n_tasks=30)
    write_vault(tmp_path / "vault", tasks)
    definitions = build_definitions(VaultIndex.load(tmp_path / "vault"))
    assert definitions.problems == ()
    assert len(definitions.agents) == len(FLEET) == 10
    assert len(definitions.tasks) == 30
    named = next(t for t in tasks if t.agent)
    note = frontmatter.load(tmp_path / "vault" / "Tasks" / f"{named.id}.md")
    assert note["agent"] == named.agent


def request_to(agent_id: str) -> RunRequest:
    return RunRequest(
        task_id="t",
        title="t",
        runtime="llm",
        agent_id=agent_id,
        persona="",
        body="Answer the question of item q1.",
        context=(),
        dependency_outputs=(),
        template=None,
        template_path=None,
        model=model_of(agent_id),
        params=(),
        timeout=5,
    )


def test_the_degrading_agent_slows_then_fails_then_recovers() -> None:
    plan = Degradation(agent_id="ed", after_calls=1, slow_calls=1, failing_calls=2)
    with FleetLLM(scale=0.001, degradation=plan) as server:
        runtime = LlmRuntime(server.base_url)
        outcomes = []
        for _ in range(5):
            try:
                runtime.run(request_to("ed"))
                outcomes.append("ok")
            except AttemptFailed as failed:
                assert failed.failure.retryable  # a 503: it may pass
                outcomes.append("failed")
        runtime.run(request_to("ada"))  # others stay well
        text, _ = call_with_failover(runtime, "Answer the question of item q1.", ("ada",), ())
        runtime.close()
        assert (server.ok_calls, server.failed_calls) == (5, 2)
    assert outcomes == ["ok", "ok", "failed", "failed", "ok"]
    assert text.startswith("loopback reply")


def test_the_fleet_process_serves_from_a_child_and_counts_there() -> None:
    with FleetProcess(scale=0.001) as server:
        runtime = LlmRuntime(server.base_url)
        runtime.run(request_to("ada"))
        assert server.ok_calls == 1
        server.reset_counts()
        assert server.ok_calls == 0
        runtime.run(request_to("ada"))
        runtime.close()
        assert server.ok_calls == 1
    with pytest.raises(AttemptFailed):  # the child stopped with the block: nothing listens
        LlmRuntime(server.base_url).run(request_to("ada"))
