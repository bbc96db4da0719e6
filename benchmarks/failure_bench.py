"""How long failures hold up a run (issue 12's cases); prints JSON.

    .venv/bin/python benchmarks/failure_bench.py [--repeats N] [--dead-repeats N]

- broken templates: 4 tasks whose template has a mistake and 8 good ones on the same
  template agent (capacity 2), through `run_vault`;
- over-long prompt: 6 llm tasks on one agent (capacity 2, 0.2 s per answer), one of them
  answered with llama.cpp's recorded 400 "exceeds the available context size";
- dead server: 6 llm tasks against a port nothing listens on, every setting at its
  default (`llm_give_up_s` 60).

The peer, in the same process, is a ThreadPoolExecutor that retries any failure of the
same calls (3 retries, backoff 0.5 s doubling, as vault-bmad's defaults) without telling
deterministic from transient failures. Before this classification vault-bmad did the
same and also took the agent out for each run of failures (30 s cool-downs): the issue
measured 121 s for the first case and no end within 200 s for the third.
Medians over repeats; times in seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vault_bmad.config import Settings, load_settings
from vault_bmad.errors import VaultBmadError
from vault_bmad.runner import run_vault
from vault_bmad.runtimes.base import ContextDoc, RunRequest
from vault_bmad.runtimes.llm import LlmRuntime
from vault_bmad.runtimes.loopback_llm import Answer, LoopbackLLM, free_port
from vault_bmad.runtimes.template import TemplateRuntime

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "llm_servers"
BROKEN_TEMPLATE = "{{ body | nosuchfilter }}\n"
PEER_RETRIES, PEER_BACKOFF_S = 3, 0.5


def write(root: Path, notes: dict[str, str]) -> None:
    for rel_path, text in notes.items():
        (root / rel_path).parent.mkdir(parents=True, exist_ok=True)
        (root / rel_path).write_text(text)


def timed_run(notes: dict[str, str], url: str, **overrides: object) -> tuple[float, dict[str, int]]:
    """Wall time and outcome counts of one `run_vault` over a new vault of `notes`."""
    with tempfile.TemporaryDirectory() as tmp:
        vault = Path(tmp) / "vault"
        write(vault, notes)
        env = {"VAULT_BMAD_LLM_BASE_URL": url, "XDG_CONFIG_HOME": str(Path(tmp) / "xdg")}
        settings = load_settings(vault, None, env=env, overrides=overrides)
        started = time.perf_counter()
        result = run_vault(vault, settings)
        elapsed = time.perf_counter() - started
    summary = result.summary
    return elapsed, {status: summary.count(status) for status in ("done", "failed", "blocked")}


def peer(calls: list[Callable[[], object]], workers: int) -> float:
    """A thread pool running every call, retrying any failure with doubling backoff."""

    def with_retries(call: Callable[[], object]) -> None:
        for attempt in range(PEER_RETRIES + 1):
            try:
                call()
                return
            except VaultBmadError:
                if attempt < PEER_RETRIES:
                    time.sleep(PEER_BACKOFF_S * 2**attempt)

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(with_retries, calls))
    return time.perf_counter() - started


def request(body: str, runtime: str, template: str | None = None) -> RunRequest:
    return RunRequest(
        "t", "t", runtime, "a", "", body, (ContextDoc("c.md", "context"),), (), template,
        "T.md" if template else None, None, (), 30.0,
    )  # fmt: skip


def broken_templates(repeats: int) -> dict[str, object]:
    notes = {
        "Agents/Scribe.md": "---\ntype: agent\ncapacity: 2\n---\nA scribe.\n",
        "Templates/Bad.md": f"---\ntype: template\n---\n{BROKEN_TEMPLATE}",
    }
    for n in range(4):
        notes[f"Tasks/Broken {n}.md"] = (
            f"---\ntype: task\nagent: scribe\ntemplate: '[[Bad]]'\n---\nBroken {n}.\n"
        )
    for n in range(8):
        notes[f"Tasks/Good {n}.md"] = f"---\ntype: task\nagent: scribe\n---\nGood {n}.\n"
    runs = [timed_run(notes, "http://127.0.0.1:9/v1") for _ in range(repeats)]
    renderer = TemplateRuntime()
    calls = [lambda: renderer.run(request("x", "template", BROKEN_TEMPLATE))] * 4
    calls += [lambda: renderer.run(request("x", "template"))] * 8
    return {
        "vault_bmad_s": statistics.median(r[0] for r in runs),
        "outcomes": runs[-1][1],
        "peer_retry_all_s": statistics.median(peer(calls, 2) for _ in range(repeats)),
    }


def over_long_prompt(repeats: int) -> dict[str, object]:
    too_long = Answer.recorded(
        json.loads((FIXTURES / "llama_cpp" / "context_length_exceeded.json").read_text())
    )
    notes = {"Agents/W.md": "---\ntype: agent\nruntime: llm\ncapacity: 2\n---\nBe brief.\n"}
    for n in range(6):
        huge = " HUGE" if n == 0 else ""
        notes[f"Tasks/T{n}.md"] = f"---\ntype: task\nagent: w\n---\nPart {n}.{huge}\n"

    def script(call: int, body: object) -> Answer | None:
        return too_long if "HUGE" in json.dumps(body) else None

    with LoopbackLLM(latency=lambda: 0.2, script=script) as server:
        runs = [timed_run(notes, server.base_url) for _ in range(repeats)]
        llm = LlmRuntime(server.base_url)
        bodies = [f"Part {n}.{' HUGE' if n == 0 else ''}" for n in range(6)]
        calls = [lambda body=body: llm.run(request(body, "llm")) for body in bodies]
        peer_s = statistics.median(peer(calls, 2) for _ in range(repeats))
        llm.close()
    return {
        "vault_bmad_s": statistics.median(r[0] for r in runs),
        "outcomes": runs[-1][1],
        "peer_retry_all_s": peer_s,
    }


def dead_server(repeats: int) -> dict[str, object]:
    notes = {"Agents/W.md": "---\ntype: agent\nruntime: llm\n---\nBe brief.\n"}
    for n in range(6):
        notes[f"Tasks/T{n}.md"] = f"---\ntype: task\nagent: w\n---\nPart {n}.\n"
    url = f"http://127.0.0.1:{free_port()}/v1"
    runs = [timed_run(notes, url) for _ in range(repeats)]
    return {
        "vault_bmad_s": statistics.median(r[0] for r in runs),
        "outcomes": runs[-1][1],
        "llm_give_up_s": Settings().llm_give_up_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dead-repeats", type=int, default=1, help="each takes about 60 s")
    args = parser.parse_args()
    os.environ.pop("VAULT_BMAD_LLM_BASE_URL", None)
    document = {
        "broken_templates": broken_templates(args.repeats),
        "over_long_prompt": over_long_prompt(args.repeats),
        "dead_server": dead_server(args.dead_repeats),
    }
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
