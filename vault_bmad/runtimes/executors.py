"""The pool that runs task attempts, from the `executor` setting: threads here, or Dask.

`thread` is a ThreadPoolExecutor. `dask` starts a LocalCluster of worker processes on this
machine; `dask://HOST:PORT` joins a running Dask scheduler. Either Dask form submits calls
through a `distributed.Client` and can say how often Dask started each one: it runs a call
again when the worker running it is lost, and those calls count too.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, Protocol

from vault_bmad.config import DASK_SCHEME, check_executor_spec
from vault_bmad.errors import SetupError

LOCAL_DASK_WORKERS = 2  # worker processes of a LocalCluster; more threads each, not more processes
SCHEDULER_CONNECT_S = 5.0  # a Dask scheduler that does not answer in this long is not there


class WorkerCall(Protocol):
    """A call handed to workers: a concurrent or a Dask future."""

    def result(self, timeout: float | None = None) -> Any: ...

    def cancel(self) -> Any: ...


class Workers(Protocol):
    """Where attempts run when they run away from the engine's own threads."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> WorkerCall: ...

    def runs(self, call: WorkerCall) -> int:
        """How many times the call was started: more than 1 when a worker was lost."""
        ...


class ThreadWorkers:
    """An Executor's threads; each call runs once."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> WorkerCall:
        return self.executor.submit(fn, *args)

    def runs(self, call: WorkerCall) -> int:
        return 1


class DaskWorkers:
    """A Dask cluster's workers, through its client."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> WorkerCall:
        return self.client.submit(fn, *args, pure=False)  # type: ignore[no-any-return]

    def runs(self, call: WorkerCall) -> int:
        key = getattr(call, "key", None)
        return int(self.client.run_on_scheduler(_started, key=key)) if key else 1


def _started(key: str, dask_scheduler: Any = None) -> int:
    """On the scheduler: 1, plus one for each worker lost while it ran the task."""
    task = dask_scheduler.tasks.get(key) if dask_scheduler is not None else None
    return 1 + int(getattr(task, "suspicious", 0))


def is_remote(spec: str) -> bool:
    """Whether attempts under `spec` run in other processes, so their inputs must pickle."""
    return check_executor_spec(spec) != "thread"


def make_executor(spec: str, max_workers: int) -> tuple[Workers, Callable[[], None]]:
    """The workers `spec` names, and the function that shuts them (and any cluster) down.
    Raises SetupError when a Dask scheduler cannot be reached."""
    if check_executor_spec(spec) == "thread":
        pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="vault-bmad-worker")
        return ThreadWorkers(pool), lambda: pool.shutdown(wait=True, cancel_futures=True)
    from distributed import Client, LocalCluster

    if spec == "dask":
        processes = min(LOCAL_DASK_WORKERS, max_workers)
        cluster = LocalCluster(
            n_workers=processes,
            threads_per_worker=max(1, -(-max_workers // processes)),
            processes=True,
            dashboard_address=":0",
            scheduler_kwargs={"dashboard": False},
            host="127.0.0.1",
        )
        client = Client(cluster)

        def close_local() -> None:
            client.close()
            cluster.close()

        return DaskWorkers(client), close_local
    address = "tcp://" + spec.removeprefix(DASK_SCHEME)
    try:
        client = Client(address, timeout=SCHEDULER_CONNECT_S)
    except OSError as exc:
        raise SetupError(f"cannot reach the Dask scheduler at {spec}: {exc}") from None
    return DaskWorkers(client), client.close
