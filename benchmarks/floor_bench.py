"""2,000 trivial template tasks through vault-bmad against the floor; prints JSON.

    .venv/bin/python benchmarks/floor_bench.py [--tasks 2000] [--repeats 5] [--quick]

The floor is a plain script doing the least any tool must do for these tasks: for each
task note, read it, parse its frontmatter (libyaml's `CSafeLoader`), render the default
template in Jinja2's sandbox (compiled once), and write the output note and the task
note once each, atomically and durably as vault-bmad writes (a temporary file, fsync,
rename, fsync of the folder). One thread, no scheduling, no store, no report.

vault-bmad runs the same vault through `run_vault` (what `vault-bmad run` does after its
imports): index, validation, scheduler, the template runtime, the result cache, the
store, write-back and the run report, with default settings. Each repeat builds a fresh
vault for each; the two alternate and their order turns. Figures are medians.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from vault_bmad.config import Settings
from vault_bmad.runner import run_vault
from vault_bmad.runtimes.template import DEFAULT_TEMPLATE

PERSONA = "You write one plain line for each item you are given."


def write_vault(root: Path, tasks: int) -> None:
    """One template agent and `tasks` independent task notes, each asking something new."""
    (root / "Agents").mkdir(parents=True)
    (root / "Tasks").mkdir()
    (root / "Agents" / "Writer.md").write_text(
        f"---\ntype: agent\nid: writer\nruntime: template\ncapacity: 10\n---\n{PERSONA}\n"
    )
    for number in range(tasks):
        (root / "Tasks" / f"Task {number:05d}.md").write_text(
            "---\ntype: task\nstatus: todo\nagent: writer\npriority: normal\ntags: [bench]\n"
            f"---\n# Item {number}\n\nWrite one line about item {number}.\n"
        )


def write_atomically(path: Path, text: str, durable: bool) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(text.encode("utf-8"))
        if durable:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(temporary, path)
    if durable:
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _says_done(note: Path) -> bool:
    """Whether the task note's frontmatter says `status: done`."""
    head = note.read_text(encoding="utf-8").split("---\n", 2)[1]
    return "\nstatus: done\n" in f"\n{head}"


def floor(vault: Path, durable: bool = True) -> int:
    """The plain script; returns how many tasks it did. Not `durable`: no fsync, so the
    notes are replaced atomically but may be lost in a power cut."""
    template = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, keep_trailing_newline=True
    ).from_string(DEFAULT_TEMPLATE)
    outputs = vault / "Outputs"
    outputs.mkdir()
    done = 0
    for path in sorted((vault / "Tasks").glob("*.md")):
        text = path.read_text(encoding="utf-8")
        _, head, body = text.split("---\n", 2)
        meta = yaml.load(head, Loader=yaml.CSafeLoader)
        if meta.get("type") != "task" or meta.get("status") != "todo":
            continue
        rendered = template.render(
            persona=PERSONA, body=body, context=[], dependency_outputs=[], params={}, model=None
        )
        output = f"{path.stem} - result"
        write_atomically(
            outputs / f"{output}.md",
            f"---\nsource_task: '[[Tasks/{path.stem}]]'\nagent: writer\n---\n{rendered}",
            durable,
        )
        state = f"status: done\nresult: '[[Outputs/{output}]]'\n"
        head = head.replace("status: todo\n", state)
        write_atomically(path, f"---\n{head}---\n{body}", durable)
        done += 1
    return done


def engine(vault: Path) -> int:
    """`vault-bmad run` on the vault, in this process; returns how many tasks ended done."""
    return run_vault(vault, Settings()).summary.count("done")


SYSTEMS: dict[str, Callable[[Path], int]] = {
    "floor": floor,
    "floor_no_fsync": lambda vault: floor(vault, durable=False),
    "vault-bmad": engine,
}


def cpu_seconds() -> float:
    """CPU time of this process so far, every thread, user and system."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(system: str, tasks: int) -> tuple[float, float]:
    """Wall and CPU seconds of one run of `system` on a fresh vault."""
    with tempfile.TemporaryDirectory() as tmp:
        vault = Path(tmp) / "vault"
        write_vault(vault, tasks)
        gc.collect()
        started, cpu = time.perf_counter(), cpu_seconds()
        done = SYSTEMS[system](vault)
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
        noted = sum(_says_done(path) for path in (vault / "Tasks").glob("*.md"))
    assert done == noted == tasks, f"{system} did {done} of {tasks} tasks, {noted} noted done"
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="200 tasks, 1 repeat")
    args = parser.parse_args()
    tasks, repeats = (200, 1) if args.quick else (args.tasks, args.repeats)
    runs: dict[str, list[tuple[float, float]]] = {system: [] for system in SYSTEMS}
    for repeat in range(repeats):
        turn = repeat % len(SYSTEMS)
        for system in [*SYSTEMS][turn:] + [*SYSTEMS][:turn]:
            runs[system].append(timed(system, tasks))
    wall = {s: statistics.median(w for w, _ in r) for s, r in runs.items()}
    cpu = {s: statistics.median(c for _, c in r) for s, r in runs.items()}
    engine_s, engine_cpu = wall["vault-bmad"], cpu["vault-bmad"]
    report = {
        "tasks": tasks,
        "repeats": repeats,
        "seconds": {s: round(v, 3) for s, v in wall.items()},
        "cpu_seconds": {s: round(v, 3) for s, v in cpu.items()},
        "runs_s": {s: [round(w, 3) for w, _ in r] for s, r in runs.items()},
        "tasks_per_s": {s: round(tasks / v, 1) for s, v in wall.items()},
        "cpu_ms_per_task": {s: round(v / tasks * 1000, 3) for s, v in cpu.items()},
        "vault_bmad_over_floor": round(engine_s / wall["floor"], 2),
        "vault_bmad_over_floor_no_fsync": round(engine_s / wall["floor_no_fsync"], 2),
        "vault_bmad_cpu_over_floor_cpu": round(engine_cpu / cpu["floor"], 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
