"""`vault-bmad bench workload`: vault-bmad and its peers on one generated vault; JSON out.

vault-bmad runs the workload as a real vault (parser, engine, cache, llm runtime,
write-back) through `run_vault`; the peers (bench/peers.py) run the same tasks against the
same loopback LLM server, in a process of its own as a real one is. Systems are interleaved,
their order rotated per repeat, and each figure is the median over repeats. Times are
divided by `scale`: reported as if the LLM's median latency were its real 2,000 ms.

`vault-bmad` runs as a vault that has been used before: its store holds the attempts of
one earlier run of another workload (another seed) on the same agents, which is what its
agent choice learns speeds from. Its result cache starts empty. `vault-bmad-cold` is a
vault's first run, with no history at all.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vault_bmad.bench.fleet_llm import FleetProcess
from vault_bmad.bench.peers import PEERS, SystemRun
from vault_bmad.bench.workload_spec import (
    BenchTask,
    lower_bound,
    make_tasks,
    slot_count,
    write_vault,
)
from vault_bmad.config import STATE_DB, Settings
from vault_bmad.metrics.figures import percentile
from vault_bmad.metrics.records import Attempt
from vault_bmad.metrics.store import Store
from vault_bmad.runner import run_vault

SYSTEMS = ("baseline", "threadpool", "dask", "vault-bmad", "vault-bmad-cold")
HISTORY_SEED_OFFSET = 1_000  # the earlier workload's seed, apart from the measured one


@dataclass(frozen=True)
class BenchPlan:
    tasks: int
    scale: float
    repeats: int
    seed: int = 7
    systems: tuple[str, ...] = SYSTEMS


QUICK = BenchPlan(tasks=48, scale=0.05, repeats=1)
FULL = BenchPlan(tasks=120, scale=0.25, repeats=3)


def vault_bmad_settings(base_url: str, scale: float) -> Settings:
    """Defaults, except: the pool as big as all agents' slots, and delays scaled like the
    LLM's."""
    slots = slot_count()
    return Settings(
        llm_base_url=base_url,
        llm_timeout_s=120.0,
        task_timeout_s=120.0,
        max_workers=slots,
        min_workers=slots,
        max_concurrent_agents=slots,
        backoff_base_s=0.5 * scale,
        backoff_max_s=30.0 * scale,
        health_cooldown_s=30.0 * scale,
        aging_step_s=60.0 * scale,
    )


def run_vault_bmad(
    tasks: tuple[BenchTask, ...],
    base_url: str,
    scale: float,
    root: Path,
    history: Sequence[Attempt] = (),
) -> SystemRun:
    """One run on a new vault whose store holds `history` (attempts of earlier runs)."""
    vault = root / f"vault-{time.monotonic_ns()}"
    write_vault(vault, tasks)
    settings = vault_bmad_settings(base_url, scale)
    if history:
        with Store(vault / settings.state_dir / STATE_DB) as store:
            store.record_attempts(history)
    started = time.monotonic()
    result = run_vault(vault, settings)
    makespan = time.monotonic() - started
    done = [o for o in result.summary.outcomes.values() if o.status == "done"]
    return SystemRun(makespan, tuple(o.seconds for o in done), len(done))


def earlier_history(plan: BenchPlan, base_url: str, root: Path) -> list[Attempt]:
    """The attempts vault-bmad recorded running another workload of the plan's size."""
    tasks = make_tasks(plan.seed + HISTORY_SEED_OFFSET, plan.tasks)
    run_vault_bmad(tasks, base_url, plan.scale, root)
    (vault,) = root.glob("vault-*")
    state_dir = vault_bmad_settings(base_url, plan.scale).state_dir  # as run_vault_bmad used
    with Store(vault / state_dir / STATE_DB) as store:
        return store.attempts(limit=len(tasks) * 10)


@dataclass(frozen=True)
class Sample:
    makespan_s: float
    throughput_per_min: float
    latency_p50_ms: float
    latency_p95_ms: float
    hit_rate: float
    done: int


def sample_of(run: SystemRun, tasks: int, ok_calls: int, scale: float) -> Sample:
    """One run's figures, unscaled; hits are tasks done without an LLM call of their own."""
    makespan = run.makespan_s / scale
    return Sample(
        makespan,
        run.done / makespan * 60 if makespan else 0.0,
        (percentile(run.latencies_s, 50) or 0.0) / scale * 1000,
        (percentile(run.latencies_s, 95) or 0.0) / scale * 1000,
        max(0.0, 1 - ok_calls / tasks),
        run.done,
    )


def median_figures(samples: list[Sample]) -> dict[str, Any]:
    """Each figure's median over repeats, the fewest tasks done, and every run's makespan."""
    keys = ("throughput_per_min", "latency_p50_ms", "latency_p95_ms", "hit_rate", "makespan_s")
    figures: dict[str, Any] = {
        key: round(statistics.median(getattr(s, key) for s in samples), 3) for key in keys
    }
    figures["done"] = min(s.done for s in samples)
    figures["makespans_s"] = [round(s.makespan_s, 3) for s in samples]
    return figures


def run_workload(
    plan: BenchPlan, on_progress: Callable[[str], None] = lambda line: None
) -> dict[str, Any]:
    """Every system of `plan` on its workload; the JSON document of the benchmark."""
    tasks = make_tasks(plan.seed, plan.tasks)
    samples: dict[str, list[Sample]] = {name: [] for name in plan.systems}
    server = FleetProcess(plan.scale)  # apart, as a real server is: every system alike
    with server, tempfile.TemporaryDirectory() as tmp:
        history: list[Attempt] = []
        if "vault-bmad" in plan.systems:
            history = earlier_history(plan, server.base_url, Path(tmp, "history"))
        for repeat in range(plan.repeats):
            shift = repeat % len(plan.systems)
            for name in plan.systems[shift:] + plan.systems[:shift]:
                server.reset_counts()
                if name.startswith("vault-bmad"):
                    used = history if name == "vault-bmad" else []
                    run = run_vault_bmad(tasks, server.base_url, plan.scale, Path(tmp), used)
                else:
                    run = PEERS[name](tasks, server.base_url)
                sample = sample_of(run, len(tasks), server.ok_calls, plan.scale)
                samples[name].append(sample)
                on_progress(f"repeat {repeat + 1}/{plan.repeats} {name}: {sample}")
    bound = lower_bound(tasks)
    systems = {name: median_figures(found) for name, found in samples.items()}
    return {
        "tasks": len(tasks),
        "repeats": plan.repeats,
        "scale": plan.scale,
        "lower_bound_makespan_s": round(bound.seconds, 3),
        "lower_bound": {
            "critical_path_s": round(bound.critical_path_s, 3),
            "work_over_capacity_s": round(bound.work_over_capacity_s, 3),
            "busiest_agent_s": round(bound.busiest_agent_s, 3),
        },
        "systems": systems,
        "ratios": ratios(systems, bound.seconds),
    }


def ratios(systems: dict[str, dict[str, Any]], bound_s: float) -> dict[str, float]:
    """vault-bmad against the targets: x baseline throughput, share of baseline p50,
    makespan over each peer's and over the lower bound."""
    ours = systems.get("vault-bmad")
    if ours is None:
        return {}
    found: dict[str, float] = {}
    if (base := systems.get("baseline")) and base["throughput_per_min"] and base["latency_p50_ms"]:
        found["throughput_over_baseline"] = ours["throughput_per_min"] / base["throughput_per_min"]
        found["p50_over_baseline"] = ours["latency_p50_ms"] / base["latency_p50_ms"]
    for peer in ("threadpool", "dask"):
        if (other := systems.get(peer)) and other["makespan_s"]:
            found[f"makespan_over_{peer}"] = ours["makespan_s"] / other["makespan_s"]
    if bound_s:
        found["makespan_over_lower_bound"] = ours["makespan_s"] / bound_s
        if cold := systems.get("vault-bmad-cold"):
            found["cold_makespan_over_lower_bound"] = cold["makespan_s"] / bound_s
    return {key: round(value, 3) for key, value in found.items()}
