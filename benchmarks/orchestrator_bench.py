"""The real orchestrator in real time, per strategy, against a plain thread pool; prints JSON.

    .venv/bin/python benchmarks/orchestrator_bench.py [--quick] [--seeds N] [--tasks N] [--scale X]

Each seed draws one DAG of tasks (orchestrator_workload.py) and writes it as a real vault.
Each strategy runs that vault through the real `Orchestrator` (index, definitions, SQLite
store, write-back), with one substitution: the "template" runtime is `SimulatedRuntime`,
which sleeps for the task's base duration times the agent's slowness (0.5x..3x), one agent
degrading mid-run (5x slower, then failing, then well).

The peer runs the same DAG on the same runtime with a plain ThreadPoolExecutor as big as
all agents' capacity: ready tasks submitted in FIFO order, agents assigned round robin (a
task that names an agent goes there first; expertise is ignored), a failed call retried at
once on the next agent. No health checks, priorities or backoff.

Per system, medians over seeds (systems interleaved, order rotated per seed):
- makespan_s: submit to the end of the run (for the orchestrator: `submit` through
  `run_until_idle`, so the write-back of every task is in it);
- task_latency: from ready (its last dependency's successful call ended, or the run began)
  to done (its own successful call ended), measured by the runtime for every system;
- attempt: one successful runtime call, waiting for a slot of the agent included;
- failed_attempts: calls that raised; unfinished_tasks: tasks that ended failed or blocked;
- over_lower_bound, over_list_schedule, over_thread_pool: makespan ratios, per seed.

`overhead` runs tasks that take no time: a chain (one dependency hop after another) and a
fan of independent tasks, so what is measured is the cost of running them. `--scale X`
multiplies every duration of the strategies run (tasks, degradation, health cool-down) by X,
which shrinks the orchestrator's fixed cost per task relative to the work.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from itertools import cycle
from pathlib import Path
from typing import Any

from orchestrator_workload import (
    FLEET,
    NO_DEGRADATION,
    AgentSpec,
    Bound,
    Call,
    Degradation,
    SimulatedRuntime,
    Workload,
    instant_workload,
    list_schedule,
    lower_bound,
    make_workload,
    note_name,
    scaled,
    write_vault,
)

from vault_bmad.config import STRATEGIES, load_settings
from vault_bmad.engine.orchestrator import Orchestrator
from vault_bmad.metrics.store import Store
from vault_bmad.model.validate import build_definitions
from vault_bmad.runtimes.base import RunRequest, RuntimeOutput
from vault_bmad.vault.index import VaultIndex

POOL = "thread_pool_round_robin"


@dataclass(frozen=True)
class RunOutcome:
    started: float  # monotonic, when the run began
    makespan_s: float
    calls: tuple[Call, ...]
    unfinished: int  # tasks that ended failed or blocked


def settings_overrides(fleet: Iterable[AgentSpec], scale: float = 1.0) -> dict[str, object]:
    """As many workers as agent slots; short backoff and cool-down, so both act in the run."""
    slots = sum(agent.capacity for agent in fleet)
    return {
        "max_workers": slots,
        "max_concurrent_agents": slots,
        "backoff_base_s": 0.01,
        "backoff_max_s": 0.2,
        "health_cooldown_s": 0.25 * scale,
    }


def run_orchestrator(
    vault: Path, strategy: str, runtime: SimulatedRuntime, overrides: dict[str, object]
) -> RunOutcome:
    """Index the vault and run it to the end through the real Orchestrator."""
    settings = load_settings(
        vault, None, env={"HOME": str(vault)}, overrides={**overrides, "strategy": strategy}
    )
    index = VaultIndex.load(vault)
    definitions = build_definitions(index)
    if definitions.problems:
        raise RuntimeError(f"the generated vault has problems: {definitions.problems[:3]}")
    with Store(vault / settings.state_dir / "state.db") as store:
        orchestrator = Orchestrator(index, settings, store, {"template": runtime})
        try:
            started = time.monotonic()
            orchestrator.submit(definitions)
            summary = orchestrator.run_until_idle()
            makespan = time.monotonic() - started
        finally:
            orchestrator.close()
    unfinished = len(definitions.tasks) - summary.count("done")
    return RunOutcome(started, makespan, runtime.calls, unfinished)


def run_thread_pool(
    workload: Workload, fleet: Iterable[AgentSpec], runtime: SimulatedRuntime
) -> RunOutcome:
    """The peer: see the module docstring."""
    agents = list(fleet)
    rotation = cycle(sorted(agent.id for agent in agents))
    waiting = {task_id: len(needs) for task_id, needs in workload.deps.items()}
    dependents: dict[str, list[str]] = {task_id: [] for task_id in workload.deps}
    for task_id, needs in workload.deps.items():
        for need in needs:
            dependents[need].append(task_id)
    running: dict[Future[RuntimeOutput], str] = {}
    size = sum(agent.capacity for agent in agents)
    with ThreadPoolExecutor(max_workers=size, thread_name_prefix="peer") as pool:

        def submit(task_id: str, agent_id: str) -> None:
            request = RunRequest(
                task_id, note_name(task_id), "template", agent_id, "", "", (), (), None, None,
                None, (), 30.0,
            )  # fmt: skip
            running[pool.submit(runtime.run, request)] = task_id

        started = time.monotonic()
        for task_id, count in waiting.items():
            if count == 0:
                submit(task_id, workload.named.get(task_id) or next(rotation))
        while running:
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in finished:
                task_id = running.pop(future)
                if future.exception() is not None:
                    submit(task_id, next(rotation))
                    continue
                for child in dependents[task_id]:
                    waiting[child] -= 1
                    if waiting[child] == 0:
                        submit(child, workload.named.get(child) or next(rotation))
        makespan = time.monotonic() - started
    return RunOutcome(started, makespan, runtime.calls, 0)


def run_system(
    system: str,
    workload: Workload,
    degradation: Degradation,
    vault: Path,
    overrides: dict[str, object] | None = None,
) -> RunOutcome:
    """One run of `system` (a strategy, or POOL) on a fresh runtime and, if needed, vault."""
    runtime = SimulatedRuntime(workload.base_s, FLEET, degradation)
    if system == POOL:
        return run_thread_pool(workload, FLEET, runtime)
    write_vault(vault, workload, FLEET)
    return run_orchestrator(vault, system, runtime, overrides or settings_overrides(FLEET))


# Figures.


def percentile(values: list[float], share: float) -> float:
    """The `share` quantile (0..1), interpolated between the nearest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    position = share * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def figures(outcome: RunOutcome, workload: Workload) -> dict[str, float]:
    """One run's figures; see the module docstring for what each latency spans."""
    done_at: dict[str, float] = {}
    for call in sorted(outcome.calls, key=lambda c: c.ended):
        if call.ok:
            done_at.setdefault(call.task_id, call.ended)
    task_latencies = [
        done_at[t] - max((done_at[d] for d in needs), default=outcome.started)
        for t, needs in workload.deps.items()
        if t in done_at and all(d in done_at for d in needs)
    ]
    attempts = [call.ended - call.started for call in outcome.calls if call.ok]
    return {
        "makespan_s": outcome.makespan_s,
        "task_latency_p50_ms": 1000 * percentile(task_latencies, 0.50),
        "task_latency_p95_ms": 1000 * percentile(task_latencies, 0.95),
        "attempt_p50_ms": 1000 * percentile(attempts, 0.50),
        "attempt_p95_ms": 1000 * percentile(attempts, 0.95),
        "failed_attempts": sum(1 for call in outcome.calls if not call.ok),
        "unfinished_tasks": outcome.unfinished,
    }


def medians(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(row[key] for row in rows), 3) for key in rows[0]}


def bench_strategies(seeds: int, n: int, scale: float) -> dict[str, Any]:
    """Every system on each seed's workload; medians over seeds."""
    plan = Degradation(after_calls=max(4, n // 20))
    degradation = replace(
        plan,
        slow_s=plan.slow_s * scale,
        error_s=plan.error_s * scale,
        error_delay_s=plan.error_delay_s * scale,
    )
    overrides = settings_overrides(FLEET, scale)
    systems = [*STRATEGIES, POOL]
    slots = sum(agent.capacity for agent in FLEET)
    rows: dict[str, list[dict[str, float]]] = {system: [] for system in systems}
    bounds: list[Bound] = []
    references: list[float] = []
    with tempfile.TemporaryDirectory(prefix="orchestrator-bench-") as folder:
        for seed in range(seeds):
            workload = scaled(make_workload(seed, n), scale)
            bound = lower_bound(workload, FLEET, slots)
            reference = list_schedule(workload, FLEET)
            bounds.append(bound)
            references.append(reference)
            shift = seed % len(systems)
            for system in systems[shift:] + systems[:shift]:
                vault = Path(folder) / f"seed{seed}-{system}"
                outcome = run_system(system, workload, degradation, vault, overrides)
                row = figures(outcome, workload)
                row["over_lower_bound"] = outcome.makespan_s / bound.seconds
                row["over_list_schedule"] = outcome.makespan_s / reference
                rows[system].append(row)
            pool_makespan = rows[POOL][-1]["makespan_s"]
            for system in systems:
                rows[system][-1]["over_thread_pool"] = (
                    rows[system][-1]["makespan_s"] / pool_makespan
                )
    return {
        "tasks": n,
        "seeds": seeds,
        "fleet": {a.id: {"slowness": a.slowness, "capacity": a.capacity} for a in FLEET},
        "degradation": vars(degradation),
        "scale": scale,
        "settings": overrides,
        "lower_bound_s": {
            "critical_path_at_best_speed": round(
                statistics.median(b.critical_path_s for b in bounds), 3
            ),
            "work_over_speed_weighted_capacity": round(
                statistics.median(b.work_over_capacity_s for b in bounds), 3
            ),
            "bound": round(statistics.median(b.seconds for b in bounds), 3),
        },
        "list_schedule_s": round(statistics.median(references), 3),
        "median_by_system": {system: medians(runs) for system, runs in rows.items()},
    }


def bench_overhead(repeats: int, chain: int, fan: int) -> dict[str, Any]:
    """Tasks that take no time, on the adaptive orchestrator and the pool: the cost of a
    dependency hop (a chain) and the most tasks per second (a fan of independent tasks)."""
    ids = [f"tasks/t{i:03d}" for i in range(max(chain, fan))]
    shapes = {
        "chain": instant_workload(
            {t: (ids[i - 1],) if i else () for i, t in enumerate(ids[:chain])}
        ),
        "fan": instant_workload(dict.fromkeys(ids[:fan], ())),
    }
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="orchestrator-overhead-") as folder:
        for repeat in range(repeats):
            for shape, workload in shapes.items():
                for system in ("adaptive", POOL):
                    vault = Path(folder) / f"{shape}-{system}-{repeat}"
                    outcome = run_system(system, workload, NO_DEGRADATION, vault)
                    times.setdefault((shape, system), []).append(outcome.makespan_s)
    hop = {s: statistics.median(times[("chain", s)]) / chain for s in ("adaptive", POOL)}
    rate = {s: fan / statistics.median(times[("fan", s)]) for s in ("adaptive", POOL)}
    return {
        "repeats": repeats,
        "chain_ms_per_hop": {s: round(v * 1000, 2) for s, v in hop.items()},
        "fan_tasks_per_s": {s: round(v) for s, v in rate.items()},
        "orchestrator_over_pool_per_hop": round(hop["adaptive"] / hop[POOL], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one small seed, for a smoke run")
    parser.add_argument("--seeds", type=int, help="workloads to draw (default 5; quick 1)")
    parser.add_argument("--tasks", type=int, help="tasks per workload (default 240; quick 120)")
    parser.add_argument("--scale", type=float, default=1.0, help="times every duration")
    args = parser.parse_args()
    seeds = args.seeds or (1 if args.quick else 5)
    tasks = args.tasks or (120 if args.quick else 240)
    report = {
        "strategies": bench_strategies(seeds, tasks, args.scale),
        "overhead": bench_overhead(1 if args.quick else 3, chain=40, fan=200),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
