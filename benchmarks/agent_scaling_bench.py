"""How far the engine scales in agents and tasks, and its cost per task; prints JSON.

    .venv/bin/python benchmarks/agent_scaling_bench.py [--quick] [--repeats N]

- overhead: independent no-op tasks (a runtime that returns at once) through the real
  Orchestrator (index, SQLite store, write-back) against a raw ThreadPoolExecutor running
  the same no-op calls: tasks per second.
- scaling: A agents of capacity 1 and A tasks (one wave: each could start at once), a
  runtime that sleeps `--work` seconds. Latency is queued -> done per task, as the
  orchestrator's events see it; flat means its p50 stays near the work itself.
Medians over repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vault_bmad.config import Settings
from vault_bmad.engine.orchestrator import Orchestrator
from vault_bmad.metrics.outcomes import Event
from vault_bmad.metrics.store import Store
from vault_bmad.model.validate import build_definitions
from vault_bmad.runtimes.base import RunRequest, RuntimeOutput
from vault_bmad.vault.index import VaultIndex


class SleepRuntime:
    name = "template"

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def run(self, request: RunRequest) -> RuntimeOutput:
        if self.seconds:
            time.sleep(self.seconds)
        return RuntimeOutput("ok\n", self.name)


def write_vault(root: Path, agents: int, tasks: int) -> None:
    (root / "Agents").mkdir(parents=True)
    (root / "Tasks").mkdir()
    for a in range(agents):
        (root / "Agents" / f"a{a}.md").write_text(
            f"---\ntype: agent\nid: a{a}\nruntime: template\ncapacity: 1\n---\nAgent {a}.\n"
        )
    for t in range(tasks):
        (root / "Tasks" / f"t{t}.md").write_text(f"---\ntype: task\n---\nDo item {t}.\n")


def run_engine(agents: int, tasks: int, work_s: float) -> dict[str, float]:
    """Makespan and queued->done latency percentiles of one run, in seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        vault = Path(tmp) / "vault"
        write_vault(vault, agents, tasks)
        slots = min(1000, agents)
        settings = Settings(max_workers=slots, min_workers=slots, max_concurrent_agents=slots)
        queued: dict[str, float] = {}
        latencies: list[float] = []

        def on_event(event: Event) -> None:
            if event.kind == "queued":
                queued.setdefault(event.task_id, time.monotonic())
            elif event.kind == "done":
                latencies.append(time.monotonic() - queued[event.task_id])

        index = VaultIndex.load(vault)
        definitions = build_definitions(index)
        with Store(vault / ".vault-bmad" / "state.db") as store:
            orchestrator = Orchestrator(
                index, settings, store, {"template": SleepRuntime(work_s)}, on_event=on_event
            )
            started = time.monotonic()
            orchestrator.submit(definitions)
            summary = orchestrator.run_until_idle()
            makespan = time.monotonic() - started
            orchestrator.close()
    assert summary.count("done") == tasks, summary.count("done")
    latencies.sort()
    return {
        "makespan_s": makespan,
        "latency_p50_s": statistics.median(latencies),
        "latency_p95_s": latencies[int(0.95 * (len(latencies) - 1))],
    }


def run_pool(tasks: int, workers: int) -> float:
    runtime = SleepRuntime(0.0)
    request = RunRequest("t", "t", "template", "a", "", "", (), (), None, None, None, (), 1.0)
    started = time.monotonic()
    with ThreadPoolExecutor(workers) as pool:
        for future in [pool.submit(runtime.run, request) for _ in range(tasks)]:
            future.result()
    return time.monotonic() - started


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(r[key] for r in runs), 4) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=float, default=1.0, help="Seconds each task sleeps.")
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    fan = 100 if args.quick else 300
    sizes = (10, 40) if args.quick else (10, 40, 100, 200, 400)
    engine = [run_engine(10, fan, 0.0)["makespan_s"] for _ in range(repeats)]
    pool = [run_pool(fan, 10) for _ in range(repeats)]
    overhead = {
        "tasks": fan,
        "engine_tasks_per_s": round(fan / statistics.median(engine), 1),
        "thread_pool_tasks_per_s": round(fan / statistics.median(pool), 1),
    }
    scaling = {}
    for agents in sizes:
        runs = [run_engine(agents, agents, args.work) for _ in range(repeats)]
        scaling[str(agents)] = median_of(runs) | {
            "p50_over_work": round(
                statistics.median(r["latency_p50_s"] for r in runs) / args.work, 3
            )
        }
    print(json.dumps({"work_s": args.work, "overhead": overhead, "agents": scaling}, indent=2))


if __name__ == "__main__":
    main()
