"""The real orchestrator in real time, per strategy, against a plain thread pool; prints JSON.

    .venv/bin/python benchmarks/orchestrator_bench.py [--quick] [--seeds N] [--tasks N] [--scale X]

Each seed draws one workload of `vault_bmad/bench/workload_spec.py` (the one of `vault-bmad
bench workload`: ten agents, workflows and repeated requests). Each strategy runs it as a
real vault through the real `Orchestrator` (vault_bmad/bench/orchestrator_runs.py), its
"llm" runtime an in-process `SimulatedFleet`: every call sleeps for the task's drawn
latency times the agent's slowness times the scale, one agent degrading mid-run (slower,
then failing, then well). The peer is the workload benchmark's thread pool
(`peers.run_threadpool_on`) on the same fleet.

Per system, medians over seeds (systems interleaved, order rotated per seed):
- makespan_s: submit to the end of the run (for the orchestrator: `submit` through
  `run_until_idle`, so the write-back of every task is in it);
- step_latency: a workflow step's time from ready to done, read from the fleet's calls;
- attempt: one successful call, waiting for a slot of the agent included;
- calls: successful calls (the rest were served by a cache); failed_attempts: calls that
  failed; unfinished_tasks: tasks that did not end done;
- over_lower_bound, over_list_schedule, over_thread_pool: makespan ratios, per seed.

`overhead` runs tasks that take no time: a chain (one dependency hop after another) and a
fan of independent tasks, so what is measured is the cost of running them. The scale is
`SCALE` (a median call of 50 ms) times `--scale X`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from vault_bmad.bench.orchestrator_runs import POOL, figures, run_system, settings_for
from vault_bmad.bench.simulated_fleet import SimulatedFleet
from vault_bmad.bench.workload_spec import (
    DEGRADATION,
    FLEET,
    TOPICS,
    BenchTask,
    Degradation,
    list_schedule,
    lower_bound,
    make_tasks,
)
from vault_bmad.config import STRATEGIES

SCALE = 0.025  # the spec's median latency of 2 s becomes 50 ms
NEVER = Degradation(after_calls=10**9)


def medians(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(row[key] for row in rows), 3) for key in rows[0]}


def bench_strategies(seeds: int, n: int, scale: float) -> dict[str, Any]:
    """Every system on each seed's workload; medians over seeds."""
    systems = [*STRATEGIES, POOL]
    rows: dict[str, list[dict[str, float]]] = {system: [] for system in systems}
    bounds, references = [], []
    with tempfile.TemporaryDirectory(prefix="orchestrator-bench-") as folder:
        for seed in range(seeds):
            tasks = make_tasks(seed, n)
            bound = lower_bound(tasks)
            reference = list_schedule(tasks)
            bounds.append(bound)
            references.append(reference)
            shift = seed % len(systems)
            for system in systems[shift:] + systems[:shift]:
                vault = Path(folder) / f"seed{seed}-{system}"
                outcome = run_system(system, tasks, SimulatedFleet(scale), vault)
                row = figures(outcome, tasks)
                row["over_lower_bound"] = outcome.makespan_s / (bound.seconds * scale)
                row["over_list_schedule"] = outcome.makespan_s / (reference * scale)
                rows[system].append(row)
            pool_makespan = rows[POOL][-1]["makespan_s"]
            for system in systems:
                rows[system][-1]["over_thread_pool"] = (
                    rows[system][-1]["makespan_s"] / pool_makespan
                )
    settings = settings_for("adaptive", scale)
    return {
        "tasks": n,
        "seeds": seeds,
        "scale": scale,
        "degradation": vars(DEGRADATION),
        "settings": {
            key: getattr(settings, key)
            for key in ("max_workers", "backoff_base_s", "backoff_max_s", "health_cooldown_s")
        },
        "lower_bound_s": {
            "critical_path": round(statistics.median(b.critical_path_s for b in bounds) * scale, 3),
            "work_over_capacity": round(
                statistics.median(b.work_over_capacity_s for b in bounds) * scale, 3
            ),
            "busiest_agent": round(statistics.median(b.busiest_agent_s for b in bounds) * scale, 3),
            "bound": round(statistics.median(b.seconds for b in bounds) * scale, 3),
        },
        "list_schedule_s": round(statistics.median(references) * scale, 3),
        "median_by_system": {system: medians(runs) for system, runs in rows.items()},
    }


def instant_tasks(count: int, *, chain: bool) -> tuple[BenchTask, ...]:
    """Workflow-like steps, each by expertise: one after another, or all independent."""
    ids = [f"o{i}" for i in range(count)]
    return tuple(
        BenchTask(
            ids[i], ids[i], None, TOPICS[i % len(TOPICS)], (ids[i - 1],) if chain and i else ()
        )
        for i in range(count)
    )


def bench_overhead(repeats: int, chain: int, fan: int) -> dict[str, Any]:
    """Tasks that take no time, on the adaptive orchestrator and the pool: the cost of a
    dependency hop (a chain) and the most tasks per second (a fan of independent tasks)."""
    shapes = {"chain": instant_tasks(chain, chain=True), "fan": instant_tasks(fan, chain=False)}
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="orchestrator-overhead-") as folder:
        for repeat in range(repeats):
            for shape, tasks in shapes.items():
                for system in ("adaptive", POOL):
                    vault = Path(folder) / f"{shape}-{system}-{repeat}"
                    fleet = SimulatedFleet(0.0, NEVER)
                    outcome = run_system(system, tasks, fleet, vault, settings_scale=SCALE)
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
        "fleet": {a.id: {"slowness": a.slowness, "capacity": a.capacity} for a in FLEET},
        "strategies": bench_strategies(seeds, tasks, SCALE * args.scale),
        "overhead": bench_overhead(1 if args.quick else 3, chain=40, fan=200),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
