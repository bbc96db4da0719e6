"""Benchmark the CLI's start: each command in a fresh interpreter, against bare imports.

Measures, in interleaved rounds (each round runs every command once, in a rotated order):
- `python -c pass`: the interpreter alone, the floor;
- `python -c "import pydantic, click, yaml"`: the bare imports `check` cannot avoid, the peer;
  and the same plus `from pydantic import BaseModel`, which `import pydantic` defers and
  any validation needs;
- `vault-bmad check`, `index` and `run` on an empty vault (`run` with the thread executor);
- `vault-bmad check` on a copy of sample_vault/, a small real vault;
- `vault-bmad index --format json` on a generated vault of `--notes` notes (the index
  benchmark's generator), and the same work timed inside a fresh interpreter after its
  imports, so the command's start-up is the difference.

Prints one JSON object: medians in ms, and each command's ratio to the bare imports.
Run: `.venv/bin/python benchmarks/start_bench.py` (`--quick` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from index_bench import make_vault

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
VAULT_BMAD = str(Path(sys.executable).with_name("vault-bmad"))
BARE_IMPORTS = "import pydantic, click, yaml"
WITH_BASE_MODEL = BARE_IMPORTS + "; from pydantic import BaseModel"
# What `index --format json` does once its imports are done, timed in its own interpreter.
INDEX_WORK = """
import json, sys, time
from pathlib import Path
from vault_bmad.vault.index import VaultIndex
start = time.perf_counter()
notes = VaultIndex.load(Path(sys.argv[1])).as_dict()["notes"]
json.dumps({"notes": notes}, indent=2, ensure_ascii=False)
print((time.perf_counter() - start) * 1000)
"""


def commands(empty: Path, sample: Path, large: Path) -> dict[str, list[str]]:
    return {
        "python -c pass": [PYTHON, "-c", "pass"],
        "bare imports": [PYTHON, "-c", BARE_IMPORTS],
        "bare imports + pydantic.BaseModel": [PYTHON, "-c", WITH_BASE_MODEL],
        "check, empty vault": [VAULT_BMAD, "check", str(empty)],
        "index, empty vault": [VAULT_BMAD, "index", str(empty)],
        "run, empty vault": [VAULT_BMAD, "run", str(empty), "--executor", "thread"],
        "check, sample_vault": [VAULT_BMAD, "check", str(sample)],
        "index --format json, large vault": [VAULT_BMAD, "index", str(large), "--format", "json"],
    }


def wall_ms(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = (time.perf_counter() - start) * 1000
    if done.returncode not in (0, 1):  # check exits 1 on problems; anything else is a bug
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()}")
    return elapsed


def write_bytecode() -> None:
    """Compile the package's bytecode as an install does. The first start would write it,
    but not where PYTHONDONTWRITEBYTECODE is set: every start would then compile vault_bmad
    from source (about 25 ms), while the peers' libraries come compiled."""
    subprocess.run(
        [PYTHON, "-m", "compileall", "-q", str(ROOT / "vault_bmad")],
        stdout=subprocess.DEVNULL,
        check=True,
    )


def index_work_ms(root: Path) -> float:
    """What `vault-bmad index --format json` does after its imports, in a fresh interpreter."""
    done = subprocess.run(
        [PYTHON, "-c", INDEX_WORK, str(root)], capture_output=True, text=True, check=True
    )
    return float(done.stdout)


def interleaved(runs: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(runs[name]())
    return samples


def run(rounds: int, notes: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="vault-bmad-start-") as folder:
        base = Path(folder)
        empty, sample, large = base / "empty", base / "sample", base / "large"
        empty.mkdir()
        shutil.copytree(ROOT / "sample_vault", sample, ignore=shutil.ignore_patterns(".*"))
        large.mkdir()
        make_vault(large, notes)
        write_bytecode()
        wall_ms([VAULT_BMAD, "--version"])
        runs: dict[str, Callable[[], float]] = {
            name: (lambda command=command: wall_ms(command))
            for name, command in commands(empty, sample, large).items()
        }
        runs["index work after imports, large vault"] = lambda: index_work_ms(large)
        samples = interleaved(runs, rounds)
    medians = {name: round(statistics.median(values), 1) for name, values in samples.items()}
    bare = medians["bare imports"]
    large_cli = medians["index --format json, large vault"]
    large_work = medians["index work after imports, large vault"]
    return {
        "rounds": rounds,
        "large_vault_notes": notes,
        "python": sys.version.split()[0],
        "median_ms": medians,
        "min_ms": {name: round(min(values), 1) for name, values in samples.items()},
        "ratio_to_bare_imports": {
            name: round(value / bare, 2)
            for name, value in medians.items()
            if name not in ("bare imports", "index work after imports, large vault")
        },
        "large_index_start_ms": round(large_cli - large_work, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--notes", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="5 rounds, 500 notes")
    args = parser.parse_args()
    rounds, notes = (5, 500) if args.quick else (args.rounds, args.notes)
    print(json.dumps(run(rounds, notes), indent=2))


if __name__ == "__main__":
    main()
