"""Prometheus exposition for `/metrics`, through prometheus-client.

Counters and the run-time histogram follow the engine's events; gauges are read from the
latest engine snapshot and the cache's per-level stats when Prometheus scrapes, and the
last hour's figures (throughput, utilization) come from `metrics.series`, as the
dashboard's do. Every status has its gauge, 0 when no task has it, and no counter carries
a `_created` series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import get_args

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vault_bmad.engine.snapshot import EngineSnapshot
from vault_bmad.metrics.figures import DEFINITIONS, AgentFigures, Overall
from vault_bmad.metrics.outcomes import Event
from vault_bmad.metrics.usage import Usage
from vault_bmad.model.status import OUTCOMES, Phase, TaskStatus

disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` series only add bulk
STATUSES: tuple[str, ...] = tuple(dict.fromkeys((*get_args(TaskStatus), *get_args(Phase))))

# Agent calls take from milliseconds (a template, a cache hit) to minutes (a slow LLM).
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

CacheStats = Mapping[str, Mapping[str, int]]  # level -> {"hits": n, "misses": n, ...}
UsageByAgent = Mapping[str, Usage]  # metrics.usage by agent, over all history


class _SnapshotCollector(Collector):
    def __init__(
        self,
        snapshot: Callable[[], EngineSnapshot],
        cache_stats: Callable[[], CacheStats],
        usage_by_agent: Callable[[], UsageByAgent],
    ) -> None:
        self._snapshot = snapshot
        self._cache_stats = cache_stats
        self._usage = usage_by_agent

    def collect(self) -> Iterator[Metric]:
        snapshot = self._snapshot()
        yield GaugeMetricFamily("vault_bmad_queue_depth", "Tasks queued", value=snapshot.queued)
        yield GaugeMetricFamily(
            "vault_bmad_running_tasks", "Tasks running now", value=snapshot.running
        )
        yield GaugeMetricFamily(
            "vault_bmad_pool_size", "Tasks the pool may run at once", value=snapshot.pool_size
        )
        by_status = GaugeMetricFamily(
            "vault_bmad_tasks_current", "Tasks the vault defines, by status", labels=["status"]
        )
        counts = snapshot.counts()
        for status in sorted({*STATUSES, *counts}):
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status
        health = GaugeMetricFamily(
            "vault_bmad_agent_health", "Agent health score, 0 to 1", labels=["agent"]
        )
        in_service = GaugeMetricFamily(
            "vault_bmad_agent_in_service", "1 while the agent takes work", labels=["agent"]
        )
        for agent in snapshot.agents:
            health.add_metric([agent.id], agent.health)
            in_service.add_metric([agent.id], 1.0 if agent.state == "in_service" else 0.0)
        yield health
        yield in_service
        endpoints = GaugeMetricFamily(
            "vault_bmad_endpoint_up", "1 while the LLM server answers", labels=["url"]
        )
        for endpoint in snapshot.endpoints:
            endpoints.add_metric([endpoint.url], 0.0 if endpoint.down_since else 1.0)
        yield endpoints
        stats = self._cache_stats()
        for name, help_text in (("hits", "Cache hits"), ("misses", "Cache misses")):
            family = CounterMetricFamily(f"vault_bmad_cache_{name}", help_text, labels=["level"])
            for level, figures in sorted(stats.items()):
                family.add_metric([level], figures.get(name, 0))
            yield family
        yield from _usage_families(self._usage())


def _usage_families(by_agent: UsageByAgent) -> Iterator[Metric]:
    """Tokens, cost and calls by agent: spent by its calls, and saved by the cache."""
    for saved in (False, True):
        suffix, verb = ("_saved", "the cache saved") if saved else ("", "spent")
        tokens = CounterMetricFamily(
            f"vault_bmad_tokens{suffix}", f"LLM tokens {verb}", labels=["agent", "kind"]
        )
        cost = CounterMetricFamily(
            f"vault_bmad_cost{suffix}", f"Cost {verb}, by llm_prices", labels=["agent"]
        )
        for agent, used in sorted(by_agent.items()):
            prompt, completion = (
                (used.saved_tokens_in, used.saved_tokens_out)
                if saved
                else (used.tokens_in, used.tokens_out)
            )
            tokens.add_metric([agent, "prompt"], prompt)
            tokens.add_metric([agent, "completion"], completion)
            cost.add_metric([agent], (used.saved_cost if saved else used.cost) or 0.0)
        yield tokens
        yield cost
    calls = CounterMetricFamily(
        "vault_bmad_runtime_calls", "Calls to runtimes, with Dask's re-runs", labels=["agent"]
    )
    for agent, used in sorted(by_agent.items()):
        calls.add_metric([agent], used.calls)
    yield calls


class ServiceMetrics:
    """One registry per service, so tests and several services never share counters."""

    def __init__(
        self,
        snapshot: Callable[[], EngineSnapshot],
        cache_stats: Callable[[], CacheStats] = dict,
        usage_by_agent: Callable[[], UsageByAgent] = dict,
    ) -> None:
        self.registry = CollectorRegistry()
        self.tasks = Counter(
            "vault_bmad_tasks",
            "Tasks that ended, by status and agent",
            ["status", "agent"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "vault_bmad_attempt_seconds",
            "Run time per task attempt, started to ended, by agent and outcome",
            ["agent", "outcome"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_SnapshotCollector(snapshot, cache_stats, usage_by_agent))

    def observe(self, event: Event) -> None:
        if event.kind in OUTCOMES:
            self.tasks.labels(event.kind, event.agent or "none").inc()
        if event.seconds is not None and event.kind in ("done", "failed", "retry"):
            outcome = "ok" if event.kind == "done" else "error"
            self.latency.labels(event.agent or "none", outcome).observe(event.seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def figures_exposition(overall: Overall, agents: Iterable[AgentFigures]) -> bytes:
    """A period's figures as gauges: throughput, and utilization per agent and overall."""
    registry = CollectorRegistry()
    registry.register(_FigureCollector(overall, tuple(agents)))
    return generate_latest(registry)


class _FigureCollector(Collector):
    def __init__(self, overall: Overall, agents: tuple[AgentFigures, ...]) -> None:
        self._overall, self._agents = overall, agents

    def collect(self) -> Iterator[Metric]:
        o = self._overall
        yield GaugeMetricFamily(
            "vault_bmad_throughput_per_minute",
            "The last hour: " + DEFINITIONS["throughput"],
            value=o.throughput_per_min or 0.0,
        )
        utilization = GaugeMetricFamily(
            "vault_bmad_utilization",
            "The last hour: " + DEFINITIONS["utilization"] + '; agent="" for all',
            labels=["agent"],
        )
        utilization.add_metric([""], o.utilization or 0.0)
        for agent in self._agents:
            utilization.add_metric([agent.agent], agent.utilization or 0.0)
        yield utilization
