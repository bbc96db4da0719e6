"""End to end through a running service: a note saved, its task started; prints JSON.

A real `Service` (watcher, engine thread, store, write-back, web server on a free
loopback port) runs over a temporary vault with one agent on the template runtime.
- save_to_start: 100 task notes saved one at a time; for each, the seconds from the
  save to the attempt's start as the store records it (median, p95, max);
- burst: 1,000 task notes written as fast as possible; seconds from the first write
  until every task is done, and the process CPU seconds that took;
- peer: the same 1,000 notes run by `vault-bmad run` (one batch, no watcher), so the
  service's cost of following changes one batch at a time shows as a ratio.

Run: `.venv/bin/python benchmarks/serve_bench.py` (`--quick` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from vault_bmad.config import STATE_DB, load_settings
from vault_bmad.metrics.store import Store
from vault_bmad.runner import run_vault
from vault_bmad.runtimes.loopback_llm import free_port
from vault_bmad.service import Service

AGENT = "---\ntype: agent\ncapacity: 8\nexpertise: [writing]\n---\nYou write.\n"


def new_vault(root: Path) -> Path:
    (root / "Agents").mkdir(parents=True)
    (root / "Tasks").mkdir()
    (root / "Agents/Writer.md").write_text(AGENT)
    return root


def task_text(number: int) -> str:
    return f"---\ntype: task\nagent: writer\n---\nWrite note {number}.\n"


def wait_for(condition: object, timeout: float, every_s: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(every_s)
    raise TimeoutError("the service did not catch up")


def started_at(store: Store) -> dict[str, float]:
    store.flush()
    return {a.task_id: a.started_at for a in store.attempts(limit=100_000)}


def save_to_start(saves: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        vault = new_vault(Path(folder))
        service = Service(vault, load_settings(vault, None, overrides={"port": free_port()}))
        service.start()
        try:
            delays = []
            for number in range(saves):
                saved = time.time()
                (vault / f"Tasks/T{number}.md").write_text(task_text(number))
                task_id = f"tasks/t{number}"
                wait_for(lambda tid=task_id: tid in started_at(service.store), 10)
                delays.append(started_at(service.store)[task_id] - saved)
        finally:
            service.stop()
    delays.sort()
    return {
        "saves": saves,
        "median_s": round(statistics.median(delays), 4),
        "p95_s": round(delays[int(0.95 * (len(delays) - 1))], 4),
        "max_s": round(delays[-1], 4),
    }


def burst(notes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        vault = new_vault(Path(folder))
        service = Service(vault, load_settings(vault, None, overrides={"port": free_port()}))
        service.start()
        try:
            cpu, first = time.process_time(), time.monotonic()
            for number in range(notes):
                (vault / f"Tasks/T{number}.md").write_text(task_text(number))
            done = service.snapshot  # cheap to poll: the store is read only at the end
            wait_for(lambda: done().counts().get("done", 0) >= notes, 300, every_s=0.05)
            wall, cpu = time.monotonic() - first, time.process_time() - cpu
        finally:
            service.stop()
    return {"notes": notes, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}


def batch_run(notes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        vault = new_vault(Path(folder))
        for number in range(notes):
            (vault / f"Tasks/T{number}.md").write_text(task_text(number))
        cpu, first = time.process_time(), time.monotonic()
        result = run_vault(vault, load_settings(vault, None))
        wall, cpu = time.monotonic() - first, time.process_time() - cpu
        assert result.summary.count("done") == notes
        assert (vault / ".vault-bmad" / STATE_DB).exists()
    return {"notes": notes, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20 saves, 100 notes")
    args = parser.parse_args()
    saves, notes = (20, 100) if args.quick else (100, 1000)
    service_burst = burst(notes)
    peer = batch_run(notes)
    print(
        json.dumps(
            {
                "save_to_start": save_to_start(saves),
                "burst": service_burst,
                "peer_run": peer,
                "burst_over_run": round(service_burst["wall_s"] / peer["wall_s"], 2),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
