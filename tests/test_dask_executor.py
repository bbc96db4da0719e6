"""Task attempts on Dask workers in other processes: same results as the thread pool."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import frontmatter
import pytest

from vault_bmad.config import Settings, check_executor_spec, load_settings
from vault_bmad.errors import ConfigError
from vault_bmad.metrics.store import Store
from vault_bmad.runner import EXIT_NEEDS_INPUT, run_vault
from vault_bmad.runtimes.base import RunRequest
from vault_bmad.runtimes.executors import make_executor
from vault_bmad.runtimes.loopback_llm import LoopbackLLM, free_port
from vault_bmad.runtimes.remote import NotPicklable, RemoteRuntime, RuntimeSpec

FAST = {
    "backoff_base_s": 0.01,
    "backoff_max_s": 0.05,
    "max_workers": 4,
    "health_cooldown_s": 0.2,
}
DASK = str(Path(sys.executable).parent / "dask")
WORKER_FLAGS = ["--no-dashboard", "--local-directory"]
VAULT_BMAD_RUN = [str(Path(sys.executable).parent / "vault-bmad"), "run"]


def settings_for(vault: Path, server: LoopbackLLM, executor: str) -> Settings:
    env = {**os.environ, "VAULT_BMAD_LLM_BASE_URL": server.base_url}
    return load_settings(vault, None, env=env, overrides={**FAST, "executor": executor})


def mixed_vault(vault: Path) -> Path:
    """The sample vault, plus llm tasks (one repeated, so the cache serves it) and a chain."""
    notes = {"Agents/Writer.md": "---\ntype: agent\nruntime: llm\nmodel: tiny\n---\nBe brief.\n"}
    for n in range(4):
        notes[f"Tasks/Ask {n}.md"] = f"---\ntype: task\nagent: writer\n---\nQuestion {n % 3}.\n"
    notes["Tasks/Sum up.md"] = (
        "---\ntype: task\nagent: writer\ndepends_on: ['[[Ask 0]]', '[[Ask 1]]']\n---\nSum up.\n"
    )
    for rel_path, text in notes.items():
        (vault / rel_path).parent.mkdir(parents=True, exist_ok=True)
        (vault / rel_path).write_text(text, encoding="utf-8")
    return vault


def results(vault: Path) -> dict[str, tuple[object, str]]:
    """Each task note's status, and its output note's body."""
    found: dict[str, tuple[object, str]] = {}
    for path in sorted((vault / "Tasks").rglob("*.md")):
        note = frontmatter.load(path)
        output = str(note.get("result", "")).strip("[]")
        body = frontmatter.load(vault / f"{output}.md").content if output else ""
        found[path.relative_to(vault).as_posix()] = (note.get("status"), body)
    return found


@pytest.fixture
def vault_pair(sample_vault: Path, tmp_path: Path) -> tuple[Path, Path]:
    original = mixed_vault(sample_vault)
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    return original, copy


def test_dask_local_cluster_matches_the_thread_pool(vault_pair: tuple[Path, Path]) -> None:
    threaded, distributed = vault_pair
    with LoopbackLLM() as server:
        by_threads = run_vault(threaded, settings_for(threaded, server, "thread"))
        calls_by_threads = server.calls
        by_dask = run_vault(distributed, settings_for(distributed, server, "dask"))
        calls_by_dask = server.calls - calls_by_threads
    assert by_dask.summary.count("done") == by_threads.summary.count("done") == 17
    assert results(distributed) == results(threaded)
    # The cache lives in the service process, so Dask workers repeat no call.
    assert calls_by_dask == calls_by_threads == 4
    with Store(distributed / ".vault-bmad" / "state.db") as store:
        assert {a.status for a in store.attempts(limit=100)} == {"done"}


def test_a_task_that_does_not_pickle_gets_a_clear_error() -> None:
    request = RunRequest(
        task_id="tasks/odd",
        title="Odd",
        runtime="template",
        agent_id="a",
        persona="",
        body="hi",
        context=(),
        dependency_outputs=(),
        template=None,
        template_path=None,
        model=None,
        params=(("handle", threading.Lock()),),
        timeout=5,
    )
    with ThreadPoolExecutor(1) as pool:
        runtime = RemoteRuntime("template", RuntimeSpec.from_settings(Settings()), pool)
        with pytest.raises(NotPicklable) as caught:
            runtime.run(request)
    message = str(caught.value)
    assert "task tasks/odd" in message
    assert "its params cannot be sent" in message
    assert "lock" in message


def test_the_runtime_spec_carries_no_api_key() -> None:
    spec = RuntimeSpec.from_settings(Settings(llm_api_key="sk-secret"))
    assert "sk-secret" not in repr(spec)
    assert spec.settings("sk-worker").llm_api_key == "sk-worker"


@pytest.mark.parametrize("spec", ["thread", "dask", "dask://10.0.0.5:8786", "dask://h:1"])
def test_executor_specs_accepted(spec: str) -> None:
    assert check_executor_spec(spec) == spec


@pytest.mark.parametrize("spec", ["process", "dask://", "dask://host", "dask://h:0", "tcp://h:1"])
def test_executor_specs_refused(spec: str, vault: Path) -> None:
    with pytest.raises(ConfigError, match="is not `thread`, `dask` or `dask://HOST:PORT`"):
        load_settings(vault, None, env={}, overrides={"executor": spec})


def test_the_thread_executor_runs_and_closes() -> None:
    executor, close = make_executor("thread", 2)
    assert executor.submit(sum, [1, 2]).result() == 3
    close()
    with pytest.raises(RuntimeError):
        executor.submit(sum, [1])


def wait_for_workers(address: str, count: int) -> None:
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(count, timeout=60)


def test_cli_runs_on_a_dask_scheduler_and_worker_processes(
    vault_pair: tuple[Path, Path], tmp_path: Path
) -> None:
    vault = vault_pair[0]
    port = free_port()
    worker_flags = [*WORKER_FLAGS, str(tmp_path / "worker")]
    address = f"127.0.0.1:{port}"
    scheduler = subprocess.Popen(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen(
        [
            DASK,
            "worker",
            f"tcp://{address}",
            "--nthreads",
            "2",
            "--host",
            "127.0.0.1",
            *worker_flags,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_workers(f"tcp://{address}", 1)
        with LoopbackLLM() as server:
            env = {**os.environ, "VAULT_BMAD_LLM_BASE_URL": server.base_url}
            done = subprocess.run(
                [
                    *VAULT_BMAD_RUN,
                    str(vault),
                    "--executor",
                    f"dask://{address}",
                    "--format",
                    "json",
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert server.calls == 4
    finally:
        for process in (worker, scheduler):
            process.terminate()
        for process in (worker, scheduler):
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    assert done.returncode == EXIT_NEEDS_INPUT, done.stderr  # the sample's interviewer asks
    payload = json.loads(done.stdout)
    assert (payload["done"], payload["failed"], payload["blocked"]) == (17, 0, 0)
    assert payload["needs-input"] == 1
    assert frontmatter.load(vault / "Tasks/Sum up.md")["status"] == "done"


@pytest.fixture(scope="module")
def cluster_address() -> Iterator[str]:
    """A LocalCluster of two worker processes, shared by the tests that join it by address."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=2,
        processes=True,
        dashboard_address=":0",
        scheduler_kwargs={"dashboard": False},
        host="127.0.0.1",
    ) as cluster:
        yield str(cluster.scheduler_address).removeprefix("tcp://")


def test_retries_work_on_dask_workers(vault: Path, cluster_address: str) -> None:
    (vault / "Agents").mkdir()
    (vault / "Tasks").mkdir()
    (vault / "Agents/L.md").write_text("---\ntype: agent\nruntime: llm\n---\nBe brief.\n")
    (vault / "Tasks/Ask.md").write_text("---\ntype: task\nagent: l\nretries: 3\n---\nSay hi.\n")
    with LoopbackLLM(fail_first=2) as server:
        run_vault(vault, settings_for(vault, server, f"dask://{cluster_address}"))
        assert server.calls == 3
    note = frontmatter.load(vault / "Tasks/Ask.md")
    assert (note["status"], note["attempts"]) == ("done", 3)


def test_timeouts_work_on_dask_workers(vault: Path, cluster_address: str) -> None:
    (vault / "Agents").mkdir()
    (vault / "Tasks").mkdir()
    (vault / "Agents/L.md").write_text("---\ntype: agent\nruntime: llm\n---\n")
    (vault / "Tasks/Slow.md").write_text(
        "---\ntype: task\nagent: l\ntimeout: 0.3\nretries: 1\n---\nHi\n"
    )
    with LoopbackLLM(hang=True) as server:
        run_vault(vault, settings_for(vault, server, f"dask://{cluster_address}"))
    note = frontmatter.load(vault / "Tasks/Slow.md")
    assert (note["status"], note["attempts"]) == ("failed", 2)
    assert "0.3" in str(note["error"])


def test_priorities_hold_on_dask_workers(vault: Path, cluster_address: str) -> None:
    (vault / "Agents").mkdir()
    (vault / "Tasks").mkdir()
    (vault / "Agents/L.md").write_text("---\ntype: agent\nruntime: llm\ncapacity: 1\n---\n")
    for name, priority in [("Low", "low"), ("Critical", "critical"), ("Normal", "normal")]:
        (vault / f"Tasks/{name}.md").write_text(
            f"---\ntype: task\nagent: l\npriority: {priority}\n---\nDo the {name} thing.\n"
        )
    with LoopbackLLM() as server:
        run_vault(vault, settings_for(vault, server, f"dask://{cluster_address}"))
        asked = [r.messages[-1]["content"] for r in server.received]
    order = [next(n for n in ("Low", "Critical", "Normal") if n in text) for text in asked]
    assert order == ["Critical", "Normal", "Low"]


def test_a_call_dask_runs_again_after_losing_its_worker_is_counted(
    vault: Path, cluster_address: str
) -> None:
    from distributed import Client

    (vault / "Agents").mkdir()
    (vault / "Tasks").mkdir()
    (vault / "Agents/L.md").write_text("---\ntype: agent\nruntime: llm\n---\nBe brief.\n")
    (vault / "Tasks/Ask.md").write_text("---\ntype: task\nagent: l\nretries: 0\n---\nSay hi.\n")
    with LoopbackLLM(latency=lambda: 2.0) as server:
        settings = settings_for(vault, server, f"dask://{cluster_address}")
        runner = threading.Thread(target=run_vault, args=(vault, settings))
        runner.start()
        with Client(f"tcp://{cluster_address}", timeout=60) as client:
            deadline = time.monotonic() + 20
            while server.calls == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            [(worker, _)] = [(w, keys) for w, keys in client.processing().items() if keys]
            pid = client.run(os.getpid, workers=[worker])[worker]
            os.kill(pid, signal.SIGKILL)  # Dask runs the call again on the other worker
            runner.join(30)
        assert server.calls == 2
        prompt = server.received[-1]
    note = frontmatter.load(vault / "Tasks/Ask.md")
    assert (note["status"], note["attempts"]) == ("done", 1)
    with Store(vault / ".vault-bmad" / "state.db") as store:
        [attempt] = store.attempts()
    assert attempt.calls == 2
    words = sum(len(message["content"].split()) for message in prompt.messages)
    assert attempt.tokens_in == 2 * words  # the prompt was sent twice
