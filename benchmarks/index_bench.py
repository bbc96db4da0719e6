"""Benchmark the vault index against plain python-frontmatter and obsidiantools.

Generates a vault of notes with frontmatter and about ten links each in a temporary
folder, then measures, in the same run and in alternating order:
- a full index (`VaultIndex.load`), in notes/s, and the same with every note's body
  syntax (links, tags, headings, fields) parsed, since the index reads it on first use;
- `frontmatter.load` of every `.md` file, posts kept (the floor a vault index should
  reach), and the same with each post dropped at once;
- obsidiantools' `Vault(...).connect()` if it is installed;
- one incremental `VaultIndex.update` after a note changed, body parsed, in ms;
- the same texts parsed in memory, without file reads: `parse_note` against
  `frontmatter.loads` with its `YAMLHandler` (libyaml's `CSafeLoader`), in ms.

Prints one JSON object. Run: `.venv/bin/python benchmarks/index_bench.py --notes 10000`.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import frontmatter
from frontmatter.default_handlers import YAMLHandler

from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.notes import Note, parse_note

FOLDERS = ("Agents", "Tasks", "Docs", "Projects/Alpha", "Projects/Beta", "Daily", "Inbox")
TYPES = ("agent", "task", "workflow", "report", None, None, None)
WORDS = ("cache", "queue", "agent", "vault", "latency", "graph", "sprint", "story", "design")


def note_name(number: int) -> str:
    return f"Note {number:05d}"


def note_text(number: int, total: int, rng: random.Random) -> str:
    """A note with frontmatter, headings, tags, a field, a code block and ~10 links."""
    note_type = TYPES[number % len(TYPES)]
    lines = ["---"]
    if note_type:
        lines.append(f"type: {note_type}")
    lines += [
        f"id: note-{number}",
        f"created: 2024-{1 + number % 12:02d}-{1 + number % 28:02d}",
        f"tags: [{rng.choice(WORDS)}, project/{rng.choice(WORDS)}]",
        f"aliases: [N{number}]",
        f'related: "[[{note_name(rng.randrange(total))}]]"',
        "---",
        f"# {note_name(number)}",
        "",
    ]
    for paragraph in range(3):
        words = " ".join(rng.choice(WORDS) for _ in range(40))
        links = []
        for _ in range(3):
            target = note_name(rng.randrange(total))
            form = rng.randrange(5)
            if form == 0:
                links.append(f"[[{target}]]")
            elif form == 1:
                links.append(f"[[{target}|an alias]]")
            elif form == 2:
                links.append(f"[[{target}#Section {paragraph}]]")
            elif form == 3:
                links.append(f"[text]({target.replace(' ', '%20')}.md)")
            else:
                links.append(f"[[Missing {rng.randrange(1000)}]]")
        lines += [f"## Section {paragraph}", "", f"{words} {' '.join(links)} #{rng.choice(WORDS)}"]
        lines.append("")
    lines += ["status:: draft", "", "```python", "print('[[not a link]]')", "```", ""]
    return "\n".join(lines)


def make_vault(root: Path, total: int, seed: int = 7) -> list[str]:
    """Write `total` notes under `root`; return their vault-relative paths."""
    rng = random.Random(seed)
    paths = []
    for number in range(total):
        rel_path = f"{FOLDERS[number % len(FOLDERS)]}/{note_name(number)}.md"
        path = root / rel_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(note_text(number, total, rng), encoding="utf-8")
        paths.append(rel_path)
    return paths


def frontmatter_posts(root: Path) -> Iterator[frontmatter.Post]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.endswith(".md"):
                yield frontmatter.load(os.path.join(folder, name))


def load_with_frontmatter(root: Path) -> int:
    """Every note's frontmatter and body, kept in memory as an index keeps them."""
    return len(list(frontmatter_posts(root)))


def load_with_frontmatter_discarding(root: Path) -> int:
    """The same loads, each post dropped at once: no index can do only this."""
    return sum(1 for _ in frontmatter_posts(root))


def load_with_index(root: Path) -> int:
    """Frontmatter read at once; body syntax (links, tags...) left for first use."""
    return len(VaultIndex.load(root).notes)


def load_and_parse_bodies(root: Path) -> int:
    """A full index plus every note's links, tags, headings and fields parsed."""
    index = VaultIndex.load(root)
    for note in index.notes.values():
        touch_body(note)
    return len(index.notes)


def touch_body(note: Note) -> None:
    assert note.links is not None and note.tags is not None and note.fields is not None


def load_with_obsidiantools(root: Path) -> int:
    import obsidiantools.api as otools  # an optional peer: pip install obsidiantools

    vault = otools.Vault(root).connect()
    return len(vault.md_file_index)


def timed(load: Callable[[Path], int], root: Path) -> tuple[float, int]:
    start = time.perf_counter()
    count = load(root)
    return time.perf_counter() - start, count


def incremental_updates(root: Path, paths: list[str], changes: int, seed: int) -> list[float]:
    """Milliseconds for `VaultIndex.update` of one note after its text changed."""
    index = VaultIndex.load(root)
    rng = random.Random(seed)
    timings = []
    for change in range(changes):
        rel_path = rng.choice(paths)
        path = root / rel_path
        with path.open("a", encoding="utf-8") as handle:
            handle.write(f"\nEdit {change} links [[{note_name(rng.randrange(len(paths)))}]]\n")
        start = time.perf_counter()
        note = index.update(rel_path)
        assert note is not None
        touch_body(note)  # count the body's parse too, as a watcher's consumer would
        timings.append((time.perf_counter() - start) * 1000)
        assert f"Edit {change} " in note.body
    return timings


def parse_in_memory(texts: list[str], repeats: int) -> dict[str, float]:
    """Median milliseconds to parse every text, results kept, in alternating order."""
    handler = YAMLHandler()
    parsers: dict[str, Callable[[str], object]] = {
        "parse_note": lambda text: parse_note("note.md", text),
        "frontmatter_loads": lambda text: frontmatter.loads(text, handler=handler),
    }
    seconds: dict[str, list[float]] = {name: [] for name in parsers}
    for repeat in range(repeats):
        order = list(parsers.items())
        if repeat % 2:
            order.reverse()
        for name, parse in order:
            gc.collect()
            start = time.perf_counter()
            kept = [parse(text) for text in texts]
            seconds[name].append(time.perf_counter() - start)
            assert len(kept) == len(texts)
    return {name: round(statistics.median(values) * 1000, 1) for name, values in seconds.items()}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def has_obsidiantools() -> bool:
    try:
        import obsidiantools.api  # noqa: F401
    except ImportError:
        return False
    return True


def run(total: int, repeats: int, changes: int, peer_repeats: int) -> dict[str, object]:
    peers: dict[str, Callable[[Path], int]] = {
        "vault_index": load_with_index,
        "vault_index_with_bodies": load_and_parse_bodies,
        "python_frontmatter": load_with_frontmatter,
        "python_frontmatter_discarding": load_with_frontmatter_discarding,
    }
    with tempfile.TemporaryDirectory(prefix="vault-bench-") as folder:
        root = Path(folder)
        paths = make_vault(root, total)
        seconds: dict[str, list[float]] = {name: [] for name in peers}
        for repeat in range(repeats):
            order = list(peers.items())
            if repeat % 2:
                order.reverse()  # alternate, so neither peer always runs on a warmer machine
            for name, load in order:
                gc.collect()  # start each from the same clean heap
                elapsed, count = timed(load, root)
                assert count == total, (name, count)
                seconds[name].append(elapsed)
        if has_obsidiantools() and peer_repeats > 0:
            seconds["obsidiantools_connect"] = []
            for _ in range(peer_repeats):
                elapsed, count = timed(load_with_obsidiantools, root)
                assert count == total, ("obsidiantools", count)
                seconds["obsidiantools_connect"].append(elapsed)
        texts = [(root / path).read_text(encoding="utf-8") for path in paths]
        parse_ms = parse_in_memory(texts, repeats)
        update_ms = incremental_updates(root, paths, changes, seed=11)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    full_load = {
        name: {
            "median_s": round(medians[name], 3),
            "notes_per_s": round(total / medians[name]),
            "runs_s": [round(value, 3) for value in values],
        }
        for name, values in seconds.items()
    }
    ratios = {  # above 1: the first is faster
        f"{ours}_vs_{peer}": round(medians[peer] / medians[ours], 2)
        for ours in ("vault_index", "vault_index_with_bodies")
        for peer in medians
        if not peer.startswith("vault_index")
    }
    return {
        "notes": total,
        "repeats": repeats,
        "python": sys.version.split()[0],
        "obsidiantools_installed": has_obsidiantools(),
        "full_load": full_load,
        "ratios": ratios,
        "parse_in_memory_ms": parse_ms,
        "incremental_update_ms": {
            "changes": changes,
            "median": round(statistics.median(update_ms), 3),
            "p95": round(percentile(update_ms, 0.95), 3),
            "max": round(max(update_ms), 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--peer-repeats", type=int, default=1, help="runs of obsidiantools")
    args = parser.parse_args()
    result = run(args.notes, args.repeats, args.changes, args.peer_repeats)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
