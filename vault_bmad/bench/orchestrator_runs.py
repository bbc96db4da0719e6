"""The systems of benchmarks/orchestrator_bench.py: the workload of `workload_spec.py` on a
`SimulatedFleet`, run through the real `Orchestrator` per strategy, or the thread pool peer.

The orchestrator runs a real vault (index, definitions, SQLite store, result cache,
write-back) with one substitution: its "llm" runtime is the simulated fleet. The peer is
`peers.run_threadpool_on` on the same fleet. Every figure but the makespan is read from the
fleet's record of calls, the same for every system.
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from vault_bmad.bench.peers import run_threadpool_on
from vault_bmad.bench.simulated_fleet import Call, SimulatedFleet
from vault_bmad.bench.workload import vault_bmad_settings
from vault_bmad.bench.workload_spec import BenchTask, write_vault
from vault_bmad.config import STATE_DB, Settings, Strategy
from vault_bmad.engine.orchestrator import Orchestrator
from vault_bmad.metrics.figures import percentile
from vault_bmad.metrics.store import Store
from vault_bmad.model.validate import build_definitions
from vault_bmad.runner import make_cache, state_dir
from vault_bmad.vault.index import VaultIndex

POOL = "thread_pool"
NOWHERE = "http://127.0.0.1:9"  # no LLM server: the simulated fleet answers


@dataclass(frozen=True)
class RunOutcome:
    started: float  # monotonic, when the run began
    makespan_s: float
    calls: tuple[Call, ...]
    unfinished: int  # tasks that did not end done


def settings_for(strategy: str, scale: float) -> Settings:
    """The workload benchmark's settings (delays scaled like the fleet), with `strategy`."""
    return dataclasses.replace(
        vault_bmad_settings(NOWHERE, scale), strategy=cast(Strategy, strategy)
    )


def run_orchestrator(vault: Path, settings: Settings, fleet: SimulatedFleet) -> RunOutcome:
    """Index the vault and run it to the end through the real Orchestrator."""
    index = VaultIndex.load(vault)
    definitions = build_definitions(index)
    if definitions.problems:
        raise RuntimeError(f"the generated vault has problems: {definitions.problems[:3]}")
    folder = state_dir(vault, settings)
    with ExitStack() as stack:
        store = stack.enter_context(Store(folder / STATE_DB))
        cache = make_cache(settings, folder)
        if cache is not None:
            stack.enter_context(cache)
        orchestrator = Orchestrator(index, settings, store, {fleet.name: fleet}, cache=cache)
        try:
            started = time.monotonic()
            orchestrator.submit(definitions)
            summary = orchestrator.run_until_idle()
            makespan = time.monotonic() - started
        finally:
            orchestrator.close()
    unfinished = len(definitions.tasks) - summary.count("done")
    return RunOutcome(started, makespan, fleet.calls, unfinished)


def run_pool(tasks: tuple[BenchTask, ...], fleet: SimulatedFleet) -> RunOutcome:
    started = time.monotonic()
    run = run_threadpool_on(tasks, fleet)
    return RunOutcome(started, run.makespan_s, fleet.calls, len(tasks) - run.done)


def run_system(
    system: str,
    tasks: tuple[BenchTask, ...],
    fleet: SimulatedFleet,
    vault: Path,
    *,
    settings_scale: float | None = None,
) -> RunOutcome:
    """One run of `system` (a strategy, or POOL) on a fresh fleet and, if needed, vault; the
    orchestrator's delays are scaled by `settings_scale`, by default the fleet's scale."""
    if system == POOL:
        return run_pool(tasks, fleet)
    write_vault(vault, tasks)
    scale = fleet.scale if settings_scale is None else settings_scale
    return run_orchestrator(vault, settings_for(system, scale), fleet)


def figures(outcome: RunOutcome, tasks: tuple[BenchTask, ...]) -> dict[str, float]:
    """One run's figures. A workflow step's latency runs from ready (its last requirement's
    call ended, or the run began) to the end of its own successful call; an attempt is one
    successful call, the wait for a slot of the agent included."""
    done_at: dict[str, float] = {}
    for call in sorted(outcome.calls, key=lambda c: c.ended):
        if call.ok:
            done_at.setdefault(call.marker, call.ended)
    steps = [task for task in tasks if task.marker == task.id]  # unique: never a cache hit
    step_latencies = [
        done_at[t.id] - max((done_at[need] for need in t.requires), default=outcome.started)
        for t in steps
        if t.id in done_at and all(need in done_at for need in t.requires)
    ]
    attempts = [call.ended - call.started for call in outcome.calls if call.ok]
    return {
        "makespan_s": outcome.makespan_s,
        "step_latency_p50_ms": 1000 * (percentile(step_latencies, 50) or 0.0),
        "step_latency_p95_ms": 1000 * (percentile(step_latencies, 95) or 0.0),
        "attempt_p50_ms": 1000 * (percentile(attempts, 50) or 0.0),
        "attempt_p95_ms": 1000 * (percentile(attempts, 95) or 0.0),
        "calls": sum(1 for call in outcome.calls if call.ok),
        "failed_attempts": sum(1 for call in outcome.calls if not call.ok),
        "unfinished_tasks": outcome.unfinished,
    }
