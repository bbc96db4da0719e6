"""Tokens and cost: recorded per attempt, priced from the user's config, and the same
figures in `run --format json`, the run report, the API, /metrics and the period report,
with what the cache saved."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import WriteNote
from vault_bmad.cli import main
from vault_bmad.config import load_settings
from vault_bmad.metrics.records import Attempt
from vault_bmad.metrics.store import Store
from vault_bmad.metrics.usage import Usage, total, usage
from vault_bmad.runtimes.loopback_llm import LoopbackLLM
from vault_bmad.service import Service
from vault_bmad.web.app import create_app

PRICES = '[llm_prices]\n"tiny" = [2.0, 10.0]\n'  # per million tokens


def priced_vault(write: WriteNote, tmp_path: Path) -> Path:
    """Two identical tasks (the second is a cache hit) and a third; a config with prices."""
    write("Agents/W.md", "---\ntype: agent\nruntime: llm\nmodel: tiny\n---\nBe brief.\n")
    write("Tasks/A.md", "---\ntype: task\nagent: w\npriority: high\n---\nsame words here\n")
    write("Tasks/B.md", "---\ntype: task\nagent: w\npriority: low\n---\nsame words here\n")
    write("Tasks/C.md", "---\ntype: task\nagent: w\npriority: low\n---\nother\n")
    config = tmp_path / "config.toml"
    config.write_text("max_workers = 1\nmax_concurrent_agents = 1\n" + PRICES)
    return config


def reply(messages: object) -> str:
    return "one two three four"  # 4 completion tokens


def test_run_reports_tokens_and_cost_per_task_and_what_the_cache_saved(
    vault: Path, write: WriteNote, tmp_path: Path
) -> None:
    config = priced_vault(write, tmp_path)
    with LoopbackLLM(reply=reply) as server:
        env = {"VAULT_BMAD_LLM_BASE_URL": server.base_url}
        result = CliRunner().invoke(
            main, ["run", str(vault), "--config", str(config), "--format", "json"], env=env
        )
        prompts = {r.messages[-1]["content"].split()[0]: r for r in server.received}
        assert server.calls == 2  # B was served by the cache
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    a, b, c = (payload["tasks"][f"tasks/{n}"] for n in "abc")
    prompt_a = sum(len(m["content"].split()) for m in prompts["same"].messages)
    assert (a["tokens_in"], a["tokens_out"], a["calls"]) == (prompt_a, 4, 1)
    assert a["cost"] == pytest.approx((prompt_a * 2 + 4 * 10) / 1e6)
    assert (b["tokens_in"], b["cost"], b["cache"]) == (0, None, "L1")
    assert (b["saved_tokens_in"], b["saved_tokens_out"]) == (prompt_a, 4)
    assert b["saved_cost"] == pytest.approx(a["cost"])
    run = payload["usage"]
    assert run["tokens_in"] == a["tokens_in"] + c["tokens_in"]
    assert run["cost"] == pytest.approx(a["cost"] + c["cost"])
    assert run["saved_cost"] == pytest.approx(a["cost"]) and run["calls"] == 2
    report = (vault / payload["report"]).read_text()
    assert f"| tokens (prompt + completion) | {run['tokens_in']} + 8 |" in report
    assert f"| cost | {run['cost']:.4f} |" in report
    assert f"| {prompt_a} + 4 |" in report  # the task row


def test_without_a_price_tokens_count_and_cost_stays_unknown(vault: Path, write: WriteNote) -> None:
    write("Agents/W.md", "---\ntype: agent\nruntime: llm\nmodel: unpriced\n---\n")
    write("Tasks/A.md", "---\ntype: task\nagent: w\n---\nhello there\n")
    with LoopbackLLM(reply=reply) as server:
        env = {"VAULT_BMAD_LLM_BASE_URL": server.base_url}
        result = CliRunner().invoke(main, ["run", str(vault), "--format", "json"], env=env)
    task = json.loads(result.output)["tasks"]["tasks/a"]
    assert task["tokens_out"] == 4 and task["cost"] is None


def test_the_api_and_metrics_show_the_same_usage_by_agent_task_and_range(
    vault: Path, write: WriteNote, tmp_path: Path
) -> None:
    config = priced_vault(write, tmp_path)
    with LoopbackLLM(reply=reply) as server:
        env = {"VAULT_BMAD_LLM_BASE_URL": server.base_url, "HOME": str(tmp_path)}
        overrides = {"port": 0, "debounce_ms": 50}
        settings = load_settings(vault, config, env=env, overrides=overrides)
        service = Service(vault, settings)
        service.start()
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not all(
                t.status == "done" for t in service.snapshot().tasks
            ):
                time.sleep(0.05)
            service.store.flush()
            expected = total(service.store)
            client = create_app(service).test_client()
            agents = client.get("/api/agents?since=all").get_json()["agents"]
            overview = client.get("/api/metrics?since=all").get_json()
            task_a = client.get("/api/tasks/tasks/a").get_json()
            exposition = client.get("/metrics").get_data(as_text=True)
        finally:
            service.stop()
    assert expected.tokens_out == 8 and expected.saved_tokens_out == 4
    [agent] = agents
    assert agent["usage"] == expected.as_dict() == overview["usage"]
    assert task_a["usage"]["tokens_out"] == 4 and task_a["attempts"][0]["tokens_out"] == 4
    assert f'vault_bmad_tokens_total{{agent="w",kind="completion"}} {8:.1f}' in exposition
    assert f'vault_bmad_tokens_saved_total{{agent="w",kind="completion"}} {4:.1f}' in exposition
    assert f'vault_bmad_cost_total{{agent="w"}} {expected.cost!r}' in exposition
    assert 'vault_bmad_runtime_calls_total{agent="w"} 2.0' in exposition


def test_usage_splits_spent_from_saved_and_the_period_report_shows_it(tmp_path: Path) -> None:
    def attempt(task: str, cache: str, tokens: tuple[int, int], cost: float | None) -> Attempt:
        return Attempt(
            task, "w", "llm", 1, "done", 0.0, 1.0, 2.0, cache=cache,
            tokens_in=tokens[0], tokens_out=tokens[1], cost=cost,
            calls=1 if cache == "miss" else 0,
        )  # fmt: skip

    with Store(tmp_path / "state.db") as store:
        store.record_attempts(
            [
                attempt("a", "miss", (100, 10), 0.5),
                attempt("a", "L2", (100, 10), 0.5),
                attempt("b", "miss", (7, 3), None),
            ]
        )
        store.flush()
        by_task = usage(store, "task_id")
        everything = total(store)
        assert usage(store, "all", since=5.0) == {}
    assert by_task["a"] == Usage(100, 10, 0.5, 1, 100, 10, 0.5)
    assert by_task["b"] == Usage(7, 3, None, 1, 0, 0, None)
    assert everything == Usage(107, 13, 0.5, 2, 100, 10, 0.5)
    assert everything.as_dict()["tokens"] == 120
