"""Templates in a real box: worker processes the timeout stops, OS limits, bounded strings,
and one output cap for every runtime. Real subprocesses, real vaults."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import frontmatter
import pytest
from click.testing import CliRunner

from tests.conftest import WriteNote
from tests.test_serve import Served, status_of
from tests.waiting import wait_until
from vault_bmad.cli import main
from vault_bmad.errors import TemplateRenderError
from vault_bmad.runtimes.base import ContextDoc, RunRequest, cap_text
from vault_bmad.runtimes.command import CommandRuntime
from vault_bmad.runtimes.loopback_llm import LoopbackLLM
from vault_bmad.runtimes.template import TemplateRuntime
from vault_bmad.runtimes.template_worker import frame

RUNAWAY = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
CAP = 4 * 1024 * 1024

BASE = RunRequest(
    task_id="t",
    title="T",
    runtime="template",
    agent_id="a",
    persona="You are careful.",
    body="Write it.",
    context=(ContextDoc("Docs/Brief.md", "A brief."),),
    dependency_outputs=(),
    template=None,
    template_path="Templates/T.md",
    model=None,
    params=(),
    timeout=60.0,
)


def request(**changes: object) -> RunRequest:
    return dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]


@pytest.fixture
def runtime() -> TemplateRuntime:
    return TemplateRuntime()


def worker_pids(parent: int) -> set[int]:
    """The template worker processes whose parent is `parent`, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"PPid:\t{parent}\n" in status and b"template_worker" in command:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        return "State:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(
    "bomb",
    [
        "{{ 'x'.center(2000000000) }}",
        "{{ 'x'.ljust(2000000000) }}",
        "{{ 'x'.zfill(2000000000) }}",
        "{{ 'a\tb'.expandtabs(2000000000) }}",
        "{{ '{:>2000000000}'.format('x') }}",
        "{{ '{0:{1}}'.format('x', 2000000000) }}",
        "{{ '%2000000000s' % 'x' }}",
        "{{ '%*s' % (2000000000, 'x') }}",
        "{{ '%s' | format('x' * 4000000) ~ ('y' * 4000000) }}",
        "{{ 'x' | indent(2000000000) }}",
        "{{ ('x\n' * 2000000) | indent(100) }}",
        "{{ 'x' | center(2000000000) }}",
        "{{ ('y' * 3000000) | join(',') }}",
        "{{ ','.join(['y' * 1000000] * 10) }}",
        "{{ ('ab' * 1000000).replace('a', 'xxxx') }}",
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}",
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s * 2 %}{% endfor %}",
        "{% set b %}{% for i in range(100000) %}{{ 'y' * 100 }}{% endfor %}{% endset %}",
    ],
)
def test_string_operations_stop_at_the_output_cap(runtime: TemplateRuntime, bomb: str) -> None:
    with pytest.raises(TemplateRenderError, match="over the output cap of 4,194,304"):
        runtime.render(request(template=bomb))


def test_a_template_that_loops_past_its_timeout_is_stopped(runtime: TemplateRuntime) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateRenderError, match="ran past the task's 1 s timeout"):
        runtime.render(request(template=RUNAWAY, timeout=1.0))
    assert time.monotonic() - started < 30  # a sanity bound: the loop would go on for hours
    assert runtime.render(request(template="{{ body }}")) == "Write it."  # a fresh worker


def test_memory_the_sandbox_allows_is_bounded_by_the_worker() -> None:
    runtime = TemplateRuntime(memory_mb=128)
    grow = (
        "{% set s = 'x' * 4000000 %}{% set ns = namespace(kept=[]) %}"
        "{% for i in range(1000) %}{% set ns.kept = ns.kept + [s.upper()] %}{% endfor %}"
    )
    with pytest.raises(TemplateRenderError, match="more memory than a template may use"):
        runtime.render(request(template=grow))
    assert runtime.render(request(template="{{ body }}")) == "Write it."


def test_a_worker_nobody_stops_ends_at_its_cpu_limit() -> None:
    """The kernel's CPU-time limit stops a render even when the parent never kills it."""
    worker = subprocess.Popen(
        [sys.executable, "-m", "vault_bmad.runtimes.template_worker", str(256 * 1024 * 1024)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    job = {"template": RUNAWAY, "variables": {}, "max_bytes": CAP, "timeout": 1.0}
    assert worker.stdin is not None
    worker.stdin.write(frame(pickle.dumps(job)))
    worker.stdin.flush()
    try:
        code = worker.wait(timeout=60)
    finally:
        worker.kill()
        worker.wait()
        worker.stdin.close()
        assert worker.stdout is not None
        worker.stdout.close()
    assert code == -signal.SIGXCPU


def test_output_is_cut_at_the_cap_and_marked(runtime: TemplateRuntime) -> None:
    big = "{% for i in range(100000) %}{{ 'é' * 100 }}{% endfor %}"  # 20 MB of UTF-8
    output = runtime.run(request(template=big, max_output_bytes=10_000))
    assert output.truncated
    assert len(output.text.encode()) <= 10_000
    assert output.text == "é" * 5000
    assert cap_text("é" * 3, 5) == ("éé", True)
    assert cap_text("short", 5) == ("short", False)


def test_command_output_is_capped_without_reading_it_all() -> None:
    flood = (
        sys.executable,
        "-c",
        "import sys\nfor _ in range(200): sys.stdout.write('z' * 100000)",
    )
    output = CommandRuntime(enabled=True).run(
        request(runtime="command", command=flood, max_output_bytes=50_000)
    )
    assert len(output.text) == 50_001  # one byte past the cap: the engine cuts and marks it


# Runs a command under a fresh, small parent that writes the peak resident memory of the
# command and its children (KiB) to a file. Measured from pytest itself, a child's peak
# would start at pytest's own: Linux carries the peak across fork and exec.
MEASURE_PEAK = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:], timeout=60)\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "open(sys.argv[1], 'w').write(str(peak))\n"
    "sys.exit(code)\n"
)


def _agent(write: WriteNote, runtime: str = "template") -> None:
    write("Agents/A.md", f"---\ntype: agent\nruntime: {runtime}\n---\n")


def test_run_fails_a_runaway_template_at_once_and_stays_small(
    vault: Path, write: WriteNote, tmp_path: Path
) -> None:
    _agent(write)
    write("Templates/Loop.md", f"---\ntype: template\n---\n{RUNAWAY}\n")
    write("Templates/Wide.md", "---\ntype: template\n---\n{{ 'x'.center(2000000000) }}\n")
    for name, template in (("Looping", "Loop"), ("Widening", "Wide")):
        write(
            f"Tasks/{name}.md",
            f"---\ntype: task\nagent: a\ntimeout: 3\nretries: 3\ntemplate: '[[{template}]]'\n"
            "---\nGo.\n",
        )
    write("Tasks/Fine.md", "---\ntype: task\nagent: a\n---\nFine.\n")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    peak_path = tmp_path / "peak.txt"
    started = time.monotonic()
    command = [sys.executable, "-m", "vault_bmad.cli", "run", str(vault), "--format", "json"]
    finished = subprocess.run(
        [sys.executable, "-c", MEASURE_PEAK, str(peak_path), *command],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    took = time.monotonic() - started
    assert finished.returncode == 1, finished.stderr
    outcome = json.loads(finished.stdout)
    assert (outcome["done"], outcome["failed"]) == (1, 2)
    assert took < 45  # the loop is stopped at its 3 s timeout, not left to run
    peak_kib = int(peak_path.read_text())
    assert 10 * 1024 < peak_kib < 400 * 1024  # no process grew toward 2 GB
    for name in ("Looping", "Widening"):
        note = frontmatter.load(vault / f"Tasks/{name}.md")
        assert (note["status"], note["attempts"]) == ("failed", 1)  # deterministic: no retry
    loop_error = str(frontmatter.load(vault / "Tasks/Looping.md")["error"])
    assert "ran past the task's 3 s timeout" in loop_error


def test_a_5_mb_llm_answer_is_capped_and_the_vault_stays_valid(
    vault: Path, write: WriteNote
) -> None:
    _agent(write, "llm")
    write("Tasks/Ask.md", "---\ntype: task\nagent: a\n---\nAsk.\n")
    with LoopbackLLM(reply=lambda messages: "word " * 1_000_000) as server:
        result = CliRunner().invoke(
            main,
            ["run", str(vault), "--format", "json"],
            env={"VAULT_BMAD_LLM_BASE_URL": server.base_url},
        )
    assert result.exit_code == 0, result.output
    output = vault / "Outputs/Tasks/Ask - result.md"
    assert output.stat().st_size < 5 * 1024 * 1024
    assert len(frontmatter.load(output).content.encode()) <= CAP
    assert frontmatter.load(vault / "Tasks/Ask.md")["truncated"] is True
    checked = CliRunner().invoke(main, ["check", str(vault)])
    assert checked.exit_code == 0, checked.output


def test_serve_stops_a_runaway_template_at_sigterm(
    vault: Path, write: WriteNote, tmp_path: Path
) -> None:
    _agent(write)
    write("Templates/Loop.md", f"---\ntype: template\n---\n{RUNAWAY}\n")
    note = write(
        "Tasks/Looping.md",
        "---\ntype: task\nagent: a\ntimeout: 120\ntemplate: '[[Loop]]'\n---\nGo.\n",
    )
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    served = Served(vault, env)
    try:
        wait_until(lambda: status_of(note) == "running", "the task never started")
        wait_until(lambda: bool(worker_pids(served.process.pid)), "no template worker")
        workers = worker_pids(served.process.pid)
        started = time.monotonic()
        code, _ = served.stop(signal.SIGTERM, timeout=90)
        assert code == 0
        assert time.monotonic() - started < 60  # not the task's 120 s timeout
        wait_until(lambda: not any(alive(pid) for pid in workers), "a worker kept running")
        assert status_of(note) == "todo"  # back to todo, as any task a stop interrupts
    finally:
        if served.process.poll() is None:
            served.process.kill()
            served.process.wait()
        if served.process.stdout is not None:
            served.process.stdout.close()
