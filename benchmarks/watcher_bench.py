"""Benchmark the vault watcher against other ways to watch a folder, in the same run.

Peers, each on its own temporary vault, all with the same batching policy where they
have one (0.2 s of quiet, at most 0.5 s of delay):
- vault-bmad: `VaultWatcher` (watchdog Observer + `ChangeDebouncer`);
- watchdog-debouncer: watchdog's Observer feeding watchdog's own `EventDebouncer(0.2)`,
  which hands over raw events, unmerged;
- watchfiles: `watchfiles.watch(step=200, debounce=500)` (Rust notify), if installed;
- raw-observer: a watchdog Observer calling back on every event, no batching (the floor).

Scenarios:
- burst: 1,000 existing notes rewritten as fast as possible; time from the first write
  until every note has been delivered, batches and items delivered, and the CPU the
  watching used (process CPU time minus the main thread's, which writes and waits);
- latency: save-to-callback latency over 100 saves, one note at a time;
- steady: one note saved every 50 ms for 3 s; when the first batch arrives, how many;
- coalesce: the pure `ChangeDebouncer` alone, µs per raw event.

Rounds alternate between peers. Prints one JSON object.
Run: `.venv/bin/python benchmarks/watcher_bench.py` (`--quick` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.utils.event_debouncer import EventDebouncer

from vault_bmad.vault.changes import ChangeDebouncer, FileEvent
from vault_bmad.vault.watcher import VaultWatcher

QUIET_S = 0.2
MAX_DELAY_S = 0.5
SETTLE_S = 0.3  # after a watcher starts, before the first write

Deliver = Callable[[list[str]], None]


class Collector:
    """Batches delivered by a peer: when each arrived and when each path was first seen."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.batches: list[tuple[float, int]] = []
        self.first_seen: dict[str, float] = {}
        self._lock = threading.Condition()

    def __call__(self, paths: list[str]) -> None:
        now = time.monotonic()
        with self._lock:
            self.batches.append((now, len(paths)))
            for path in paths:
                self.first_seen.setdefault(path, now)
            self._lock.notify_all()

    def relative(self, path: str | bytes) -> str:
        return os.path.relpath(os.fsdecode(path), self.root).replace(os.sep, "/")

    def wait_for(self, paths: set[str], timeout: float = 30.0) -> float:
        """When the last of `paths` was first delivered."""
        with self._lock:
            if not self._lock.wait_for(lambda: paths <= self.first_seen.keys(), timeout):
                raise TimeoutError(f"{len(paths - self.first_seen.keys())} paths never delivered")
            return max(self.first_seen[path] for path in paths)


class _Forward(FileSystemEventHandler):
    def __init__(self, receive: Callable[[FileSystemEvent], None]) -> None:
        self._receive = receive

    def on_any_event(self, event: FileSystemEvent) -> None:
        if not event.is_directory and event.event_type not in ("opened", "closed_no_write"):
            self._receive(event)


def _event_paths(collector: Collector, events: list[FileSystemEvent]) -> list[str]:
    return [collector.relative(event.dest_path or event.src_path) for event in events]


@contextmanager
def vault_bmad_peer(root: Path, collector: Collector) -> Iterator[None]:
    def deliver(batch: list[Any]) -> None:
        collector([change.path for change in batch])

    with VaultWatcher(root, deliver, debounce_s=QUIET_S, max_delay_s=MAX_DELAY_S):
        yield


@contextmanager
def watchdog_debouncer_peer(root: Path, collector: Collector) -> Iterator[None]:
    debouncer = EventDebouncer(QUIET_S, lambda events: collector(_event_paths(collector, events)))
    observer = Observer()
    observer.schedule(_Forward(debouncer.handle_event), str(root), recursive=True)
    debouncer.start()
    observer.start()
    try:
        yield
    finally:
        observer.stop()
        observer.join()
        debouncer.stop()
        debouncer.join()


@contextmanager
def raw_observer_peer(root: Path, collector: Collector) -> Iterator[None]:
    observer = Observer()
    observer.schedule(
        _Forward(lambda event: collector(_event_paths(collector, [event]))),
        str(root),
        recursive=True,
    )
    observer.start()
    try:
        yield
    finally:
        observer.stop()
        observer.join()


@contextmanager
def watchfiles_peer(root: Path, collector: Collector) -> Iterator[None]:
    import watchfiles

    stop = threading.Event()

    def run() -> None:
        for changes in watchfiles.watch(
            root, step=int(QUIET_S * 1000), debounce=int(MAX_DELAY_S * 1000), stop_event=stop
        ):
            collector([collector.relative(path) for _, path in changes])

    thread = threading.Thread(target=run, name="watchfiles-peer")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


Peer = Callable[[Path, Collector], Any]


def peers() -> dict[str, Peer]:
    found: dict[str, Peer] = {
        "vault-bmad": vault_bmad_peer,
        "watchdog-debouncer": watchdog_debouncer_peer,
        "raw-observer": raw_observer_peer,
    }
    try:
        import watchfiles  # noqa: F401
    except ImportError:
        print("watchfiles not installed: pip install -e '.[bench]'", file=sys.stderr)
    else:
        found["watchfiles"] = watchfiles_peer
    return found


def make_notes(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    notes = [folder / f"Note {number:04d}.md" for number in range(count)]
    for note in notes:
        note.write_text("---\ntype: task\nstatus: todo\n---\nfirst\n", encoding="utf-8")
    return notes


def burst(peer: Peer, root: Path, notes: list[Path], round_number: int) -> dict[str, float]:
    collector = Collector(root)
    wanted = {collector.relative(str(note)) for note in notes}
    with peer(root, collector):
        time.sleep(SETTLE_S)
        cpu_start, main_start = time.process_time(), time.thread_time()
        started = time.monotonic()
        for note in notes:
            note.write_text(f"---\ntype: task\n---\nround {round_number}\n", encoding="utf-8")
        done = collector.wait_for(wanted)
        time.sleep(MAX_DELAY_S + QUIET_S)  # let stragglers arrive, so they are counted
        # every thread but this one, which writes and waits
        watch_cpu = time.process_time() - cpu_start - (time.thread_time() - main_start)
    return {
        "complete_s": done - started,
        "watch_cpu_s": watch_cpu,
        "batches": len(collector.batches),
        "items": sum(size for _, size in collector.batches),
    }


def latencies(peer: Peer, root: Path, notes: list[Path]) -> list[float]:
    collector = Collector(root)
    found = []
    with peer(root, collector):
        time.sleep(SETTLE_S)
        for note in notes:
            saved = time.monotonic()
            note.write_text("---\ntype: task\n---\nsaved again\n", encoding="utf-8")
            found.append(collector.wait_for({collector.relative(str(note))}) - saved)
            time.sleep(0.05)
    return found


def steady(peer: Peer, root: Path, seconds: float) -> dict[str, float]:
    note = make_notes(root / "Steady", 1)[0]
    collector = Collector(root)
    with peer(root, collector):
        time.sleep(SETTLE_S)
        started = time.monotonic()
        saves = 0
        while time.monotonic() - started < seconds:
            note.write_text(f"edit {saves}\n", encoding="utf-8")
            saves += 1
            time.sleep(0.05)
        collector.wait_for({"Steady/Note 0000.md"})
        batches = [at for at, _ in collector.batches if at <= started + seconds]
    return {
        "first_batch_s": batches[0] - started if batches else float("nan"),
        "batches_during": len(batches),
        "saves": saves,
    }


def coalesce_cost(events: int) -> float:
    """µs per raw event through the pure ChangeDebouncer (created, modified, closed per note)."""
    debouncer = ChangeDebouncer("/vault")
    stream = []
    for number in range(events // 3):
        path = f"/vault/Notes/Note {number:05d}.md"
        stream += [FileEvent("created", path), FileEvent("modified", path)]
        stream.append(FileEvent("modified", path))
    started = time.perf_counter()
    debouncer.add_all(stream)
    batch = debouncer.take()
    elapsed = time.perf_counter() - started
    assert len(batch) == events // 3
    return elapsed / len(stream) * 1e6


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 4),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 4),
        "max": round(ordered[-1], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: fewer rounds")
    parser.add_argument("--notes", type=int, default=1000, help="notes in a burst")
    parser.add_argument("--saves", type=int, default=100, help="saves timed per peer")
    args = parser.parse_args()
    rounds = 1 if args.quick else 5
    saves = 8 if args.quick else args.saves
    blocks = 2 if args.quick else 4
    steady_s = 1.0 if args.quick else 3.0
    found = peers()
    result: dict[str, Any] = {
        "policy": {"quiet_s": QUIET_S, "max_delay_s": MAX_DELAY_S},
        "notes": args.notes,
        "rounds": rounds,
        "saves": saves,
    }
    with tempfile.TemporaryDirectory() as folder:
        roots = {name: Path(folder) / name for name in found}
        bursts: dict[str, list[dict[str, float]]] = {name: [] for name in found}
        for root in roots.values():
            make_notes(root / "Burst", args.notes)
            make_notes(root / "Saves", saves)
        for round_number in range(rounds):
            order = list(found.items())
            order = order[round_number % len(order) :] + order[: round_number % len(order)]
            for name, peer in order:
                notes = sorted((roots[name] / "Burst").glob("*.md"))
                bursts[name].append(burst(peer, roots[name], notes, round_number))
        result["burst"] = {
            name: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            for name, runs in bursts.items()
        }
        timed: dict[str, list[float]] = {name: [] for name in found}
        per_block = max(1, saves // blocks)
        for block in range(blocks):
            for name, peer in found.items():
                notes = sorted((roots[name] / "Saves").glob("*.md"))
                part = notes[block * per_block : (block + 1) * per_block]
                timed[name] += latencies(peer, roots[name], part)
        result["latency_s"] = {name: summary(values) for name, values in timed.items()}
        result["steady"] = {
            name: steady(peer, roots[name], steady_s) for name, peer in found.items()
        }
    result["coalesce_us_per_event"] = round(
        statistics.median(coalesce_cost(30_000) for _ in range(5)), 3
    )
    ours = result["burst"]["vault-bmad"]
    result["ratios"] = {
        f"{name}/vault-bmad": {
            "burst_complete": round(figures["complete_s"] / ours["complete_s"], 2),
            "burst_cpu": round(figures["watch_cpu_s"] / ours["watch_cpu_s"], 2),
            "latency_median": round(
                result["latency_s"][name]["median"] / result["latency_s"]["vault-bmad"]["median"],
                2,
            ),
        }
        for name, figures in result["burst"].items()
        if name != "vault-bmad"
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
