"""Benchmarks of the engine's pure parts, each against peers in the same run; prints JSON.

    .venv/bin/python benchmarks/engine_bench.py [--quick]

- makespan: random DAGs on N simulated workers under FIFO, critical-path-first, the real
  Scheduler (driven on simulated time) and a random order, as ratios to the lower bound
  max(critical path, total work / workers);
- queue: TaskQueue push/pop against plain heapq (no aging: the floor) and a scan that scores
  every task on each pop (what the heaps avoid);
- scheduler: the Scheduler's own cost per task (submit + dispatch + finish), per strategy;
- balancing: a fleet with one slow and one flaky agent, per strategy: makespan, attempt
  latency and failed attempts, with health taking agents out and probing them back;
- overhead: the real Orchestrator (index, SQLite store, scheduler, executor, journal)
  running independent tasks whose runtime answers at once, with a NoteWriter that writes
  nothing: the engine's own cost per task, in tasks/s, without the result cache and with
  the default one (memory and disk), against a ThreadPoolExecutor making the same calls.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from vault_bmad.bench.simulate import (
    ListScheduling,
    ReadyKey,
    lower_bound,
    simulate,
    simulate_dag,
)
from vault_bmad.config import STATE_DB, STRATEGIES, Settings
from vault_bmad.engine.health import HealthMonitor
from vault_bmad.engine.orchestrator import Orchestrator
from vault_bmad.engine.queue import TaskQueue
from vault_bmad.engine.scheduler import Scheduler
from vault_bmad.metrics.store import Store
from vault_bmad.model.definitions import AgentDef, Priority, TaskDef
from vault_bmad.model.validate import build_definitions
from vault_bmad.runner import make_cache
from vault_bmad.runtimes.base import RunRequest, RuntimeOutput
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.writer import NoteWriter, WriteOutcome, default_output_path


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def random_dag(rng: random.Random, n: int) -> tuple[dict[str, list[str]], dict[str, float]]:
    """Layered-looking random DAG: each task depends on a few of the 40 before it."""
    deps: dict[str, list[str]] = {}
    for i in range(n):
        window = range(max(0, i - 40), i)
        deps[f"t{i}"] = [f"t{j}" for j in window if rng.random() < 0.04]
    durations = {t: round(rng.lognormvariate(0.0, 1.0), 3) for t in deps}
    return deps, durations


class SchedulerDriver:
    def __init__(self, scheduler: Scheduler, clock: Clock, durations: dict[str, float]) -> None:
        self.scheduler, self.clock, self.durations = scheduler, clock, durations

    def start(self, free: int, now: float) -> Sequence[str]:
        self.clock.now = now
        return [a.task.id for a in self.scheduler.dispatch(limit=free)]

    def finish(self, task_id: str, now: float) -> None:
        self.clock.now = now
        self.scheduler.finish(task_id, ok=True, seconds=self.durations[task_id])


def scheduler_makespan(
    deps: dict[str, list[str]], durations: dict[str, float], workers: int
) -> float:
    clock = Clock()
    agent = AgentDef(id="worker", name="Worker", path="w.md", capacity=workers)
    scheduler = Scheduler([agent], max_concurrent_agents=workers, clock=clock)
    scheduler.submit(
        TaskDef(
            id=t, path=f"{t}.md", title=t, depends_on=tuple(d), complexity=max(durations[t], 0.001)
        )
        for t, d in deps.items()
    )
    return simulate(SchedulerDriver(scheduler, clock, durations), durations, workers).makespan


def fixed_order(order: dict[str, float]) -> ReadyKey:
    """A list-scheduling key that ignores the graph: the random-order peer."""
    return lambda task_id, _ready: (order[task_id],)


def bench_makespan(seeds: int, n: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for workers in (4, 16):
        ratios: dict[str, list[float]] = {
            "fifo": [],
            "critical_path": [],
            "scheduler": [],
            "random": [],
        }
        for seed in range(seeds):
            rng = random.Random(seed)
            deps, durations = random_dag(rng, n)
            bound = lower_bound(deps, durations, workers)
            order = {t: rng.random() for t in deps}
            shuffled = ListScheduling(deps, fixed_order(order))
            makespans = {
                "fifo": simulate_dag(deps, durations, workers, "fifo").makespan,
                "critical_path": simulate_dag(deps, durations, workers, "critical_path").makespan,
                "scheduler": scheduler_makespan(deps, durations, workers),
                "random": simulate(shuffled, durations, workers).makespan,
            }
            for name, makespan in makespans.items():
                ratios[name].append(makespan / bound)
        fifo_over_cp = [f / c for f, c in zip(ratios["fifo"], ratios["critical_path"], strict=True)]
        results[f"workers_{workers}"] = {
            "median_makespan_over_lower_bound": {
                k: round(statistics.median(v), 4) for k, v in ratios.items()
            },
            "worst_makespan_over_lower_bound": {k: round(max(v), 4) for k, v in ratios.items()},
            "median_fifo_over_critical_path": round(statistics.median(fifo_over_cp), 4),
        }
    return {"tasks": n, "dags": seeds, **results}


class ScanQueue:
    """The peer the heaps avoid: score every waiting task on each pop."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.items: list[tuple[str, int, int, int, float]] = []

    def push(self, task_id: str, priority: int, criticality: int, dependents: int) -> None:
        self.items.append((task_id, priority, criticality, dependents, self.clock()))

    def pop(self) -> str:
        now = self.clock()

        def key(item: tuple[str, int, int, int, float]) -> tuple[float, float]:
            _, level, crit, deps, at = item
            waited = now - at
            return (
                max(-1, level - math.floor(waited / 60)),
                -(crit * 10 + deps * 5 + waited * 0.1),
            )

        best = min(range(len(self.items)), key=lambda i: key(self.items[i]))
        return self.items.pop(best)[0]


def queue_workload(n: int, seed: int) -> list[tuple[str, int, int, int]]:
    rng = random.Random(seed)
    return [(f"t{i}", rng.randrange(5), rng.randrange(11), rng.randrange(4)) for i in range(n)]


def run_queue(kind: str, work: list[tuple[str, int, int, int]]) -> float:
    """Push everything with time passing, then interleave pops and pushes, then drain."""
    clock = Clock()
    started = time.perf_counter()
    if kind == "taskqueue":
        queue = TaskQueue(clock=clock)
        for task_id, level, crit, deps in work:
            queue.push(task_id, priority=Priority(level), criticality=crit, dependents=deps)
            clock.now += 0.05
        while queue.pop() is not None:
            clock.now += 0.05
    elif kind == "heapq":
        heap: list[tuple[int, float, int, str]] = []
        for i, (task_id, level, crit, deps) in enumerate(work):
            heapq.heappush(heap, (level, -(crit * 10 + deps * 5 - 0.1 * clock.now), i, task_id))
            clock.now += 0.05
        while heap:
            heapq.heappop(heap)
            clock.now += 0.05
    else:
        scan = ScanQueue(clock)
        for task_id, level, crit, deps in work:
            scan.push(task_id, level, crit, deps)
            clock.now += 0.05
        while scan.items:
            scan.pop()
            clock.now += 0.05
    return time.perf_counter() - started


def bench_queue(sizes: Sequence[int], repeats: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for n in sizes:
        work = queue_workload(n, seed=n)
        kinds = ("taskqueue", "heapq", "scan") if n <= 5000 else ("taskqueue", "heapq")
        medians = {k: statistics.median(run_queue(k, work) for _ in range(repeats)) for k in kinds}
        row: dict[str, Any] = {
            f"{k}_us_per_op": round(v / (2 * n) * 1e6, 3) for k, v in medians.items()
        }
        row["taskqueue_over_heapq"] = round(medians["taskqueue"] / medians["heapq"], 2)
        if "scan" in medians:
            row["scan_over_taskqueue"] = round(medians["scan"] / medians["taskqueue"], 2)
        results[f"n_{n}"] = row
    return results


TEAM = [
    AgentDef(id=f"agent{i}", name=f"Agent {i}", path=f"a{i}.md", capacity=2, weight=1 + i % 3)
    for i in range(10)
]


def run_scheduler_cost(strategy: str, n: int) -> float:
    clock = Clock()
    scheduler = Scheduler(
        TEAM, max_concurrent_agents=10, strategy=strategy, clock=clock, rng=random.Random(1)
    )
    rng = random.Random(5)
    tasks = [
        TaskDef(
            id=f"t{i}",
            path=f"t{i}.md",
            title="Zzyzx",
            agent=f"agent{rng.randrange(10)}" if rng.random() < 0.3 else None,
            priority=Priority(rng.randrange(5)),
            depends_on=tuple(f"t{j}" for j in range(max(0, i - 20), i) if rng.random() < 0.05),
        )
        for i in range(n)
    ]
    started = time.perf_counter()
    scheduler.submit(tasks)
    while running := scheduler.dispatch():
        for assignment in running:
            clock.now += 0.01
            scheduler.finish(assignment.task.id, ok=True, seconds=0.01)
    elapsed = time.perf_counter() - started
    assert not scheduler.pending()
    return elapsed


def bench_scheduler(n: int, repeats: int) -> dict[str, Any]:
    medians = {
        s: statistics.median(run_scheduler_cost(s, n) for _ in range(repeats)) for s in STRATEGIES
    }
    fastest = min(medians.values())
    return {
        "tasks": n,
        "us_per_task": {s: round(v / n * 1e6, 1) for s, v in medians.items()},
        "over_fastest": {s: round(v / fastest, 2) for s, v in medians.items()},
    }


FLEET = {f"agent{i}": (1.0, 0.0) for i in range(4)} | {"slow": (5.0, 0.0), "flaky": (1.0, 0.3)}


def run_fleet(strategy: str, seed: int, n: int, health: bool = True) -> dict[str, float]:
    """Unnamed tasks on a fleet (seconds, failure chance), attempts retried.

    Six may run at once on twelve slots, so the strategy always has a choice to make.
    With `health` off no agent is ever taken out (threshold 0): the peer for health checks.
    """
    clock = Clock()
    agents = [AgentDef(id=a, name=a, path=f"{a}.md", capacity=2) for a in FLEET]
    monitor = HealthMonitor(threshold=0.7 if health else 0.0, clock=clock)
    scheduler = Scheduler(
        agents,
        max_concurrent_agents=6,
        strategy=strategy,
        health=monitor,
        clock=clock,
        rng=random.Random(seed),
    )
    scheduler.submit(
        TaskDef(id=f"t{i}", path=f"t{i}.md", title="Zzyzx", retries=5) for i in range(n)
    )
    rng = random.Random(seed)
    events: list[tuple[float, int, str, bool, float]] = []
    latencies: list[float] = []
    failed = 0
    sequence = 0
    while True:
        for a in scheduler.dispatch():
            base, failure = FLEET[a.agent_id]
            seconds = base * rng.lognormvariate(0.0, 0.3)
            heapq.heappush(
                events, (clock.now + seconds, sequence, a.task.id, rng.random() >= failure, seconds)
            )
            sequence += 1
        wake = scheduler.next_wakeup()  # a retry's backoff ending, or a probe falling due
        if wake is not None and (not events or wake < events[0][0]):
            clock.now = wake
            continue
        if not events:
            break
        clock.now, _, task_id, ok, seconds = heapq.heappop(events)
        latencies.append(seconds)
        failed += not ok
        scheduler.finish(task_id, ok=ok, seconds=seconds)
    return {
        "makespan": clock.now,
        "mean_attempt_s": statistics.fmean(latencies),
        "failed_attempts": failed,
    }


def bench_balancing(seeds: int, n: int) -> dict[str, Any]:
    runs = {s: [run_fleet(s, seed, n) for seed in range(seeds)] for s in STRATEGIES}
    for s in ("round_robin", "adaptive"):
        runs[f"{s}_without_health"] = [run_fleet(s, seed, n, health=False) for seed in range(seeds)]
    table: dict[str, Any] = {}
    for strategy, rows in runs.items():
        table[strategy] = {k: round(statistics.median(r[k] for r in rows), 3) for k in rows[0]}
    best = min(row["makespan"] for row in table.values())
    for row in table.values():
        row["makespan_over_best"] = round(row["makespan"] / best, 3)
    fleet = {a: {"seconds": s, "failure": f} for a, (s, f) in FLEET.items()}
    return {"tasks": n, "seeds": seeds, "fleet": fleet, "median_by_strategy": table}


class InstantRuntime:
    """A template runtime that answers at once: what is left is the engine's own cost."""

    name = "template"

    def run(self, request: RunRequest) -> RuntimeOutput:
        return RuntimeOutput(f"Done: {request.title}\n", self.name)


class NoNoteWrites(NoteWriter):
    """Writes no note: the engine's cost without the write-back's."""

    def update(
        self,
        rel_path: str,
        changes: Mapping[str, object | None],
        read_text: str | None,
        *,
        body_edit: Callable[[str], str] | None = None,
        sync_later: set[Path] | None = None,
    ) -> WriteOutcome:
        return WriteOutcome(rel_path, False, False, (), read_text or "")

    def write_output(
        self,
        rel_path: str | None,
        body: str,
        source_task: str | None,
        extra_frontmatter: Mapping[str, object] | None = None,
        *,
        sync_later: set[Path] | None = None,
    ) -> str:
        return rel_path or default_output_path(source_task or "Tasks/unnamed.md")


def write_task_vault(root: Path, tasks: int) -> None:
    """One template agent of capacity 10 and `tasks` independent tasks, each different."""
    (root / "Agents").mkdir(parents=True)
    (root / "Tasks").mkdir()
    (root / "Agents" / "Writer.md").write_text(
        "---\ntype: agent\nid: writer\nruntime: template\ncapacity: 10\n---\nWrite.\n"
    )
    for number in range(tasks):
        (root / "Tasks" / f"Task {number:05d}.md").write_text(
            f"---\ntype: task\nstatus: todo\nagent: writer\n---\nWrite about item {number}.\n"
        )


def run_overhead(tasks: int, cached: bool) -> float:
    """Seconds from submit to the last task done, with no note written."""
    with tempfile.TemporaryDirectory() as tmp:
        vault = Path(tmp)
        write_task_vault(vault, tasks)
        settings = Settings()
        index = VaultIndex.load(vault)
        definitions = build_definitions(index)
        state = vault / settings.state_dir
        state.mkdir()
        cache = make_cache(settings, state) if cached else None
        with Store(state / STATE_DB) as store:
            orchestrator = Orchestrator(
                index,
                settings,
                store,
                {"template": InstantRuntime()},
                cache=cache,
                writer=NoNoteWrites(index.root),
            )
            started = time.perf_counter()
            orchestrator.submit(definitions)
            summary = orchestrator.run_until_idle()
            elapsed = time.perf_counter() - started
            orchestrator.close()
        if cache is not None:
            cache.close()
    assert summary.count("done") == tasks, summary.count("done")
    return elapsed


def run_instant_pool(tasks: int) -> float:
    runtime = InstantRuntime()
    request = RunRequest("t", "t", "template", "a", "", "", (), (), None, None, None, (), 1.0)
    started = time.perf_counter()
    with ThreadPoolExecutor(10) as pool:
        for future in [pool.submit(runtime.run, request) for _ in range(tasks)]:
            future.result()
    return time.perf_counter() - started


def bench_overhead(tasks: int, repeats: int) -> dict[str, Any]:
    runs: dict[str, list[float]] = {"no_cache": [], "default_cache": [], "thread_pool": []}
    for _ in range(repeats):
        runs["no_cache"].append(run_overhead(tasks, cached=False))
        runs["default_cache"].append(run_overhead(tasks, cached=True))
        runs["thread_pool"].append(run_instant_pool(tasks))
    medians = {k: statistics.median(v) for k, v in runs.items()}
    return {
        "tasks": tasks,
        "repeats": repeats,
        "tasks_per_s": {k: round(tasks / v, 1) for k, v in medians.items()},
        "us_per_task": {k: round(v / tasks * 1e6, 1) for k, v in medians.items()},
        "runs_s": {k: [round(x, 3) for x in v] for k, v in runs.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", choices=("overhead",), help="run only this part")
    args = parser.parse_args()
    quick = args.quick
    overhead = bench_overhead(tasks=500 if quick else 2000, repeats=1 if quick else 5)
    if args.only == "overhead":
        print(json.dumps({"overhead": overhead}, indent=2))
        return
    report = {
        "makespan": bench_makespan(seeds=5 if quick else 30, n=100 if quick else 300),
        "queue": bench_queue((500,) if quick else (2000, 20000), repeats=3 if quick else 5),
        "scheduler": bench_scheduler(n=500 if quick else 5000, repeats=1 if quick else 5),
        "balancing": bench_balancing(seeds=2 if quick else 9, n=100 if quick else 600),
        "overhead": overhead,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
