"""The pool that runs task attempts, from the `executor` setting: threads here, or Dask.

`thread` is a ThreadPoolExecutor. `dask` starts a LocalCluster of worker processes on this
machine; `dask://HOST:PORT` joins a running Dask scheduler. Either Dask form gives
`Client.get_executor()`, a `concurrent.futures.Executor` whose work runs on Dask workers.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor

from vault_bmad.config import DASK_SCHEME, check_executor_spec

LOCAL_DASK_WORKERS = 2  # worker processes of a LocalCluster; more threads each, not more processes


def is_remote(spec: str) -> bool:
    """Whether attempts under `spec` run in other processes, so their inputs must pickle."""
    return check_executor_spec(spec) != "thread"


def make_executor(spec: str, max_workers: int) -> tuple[Executor, Callable[[], None]]:
    """The executor `spec` names, and the function that shuts it (and any cluster) down."""
    if check_executor_spec(spec) == "thread":
        pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="vault-bmad-worker")
        return pool, lambda: pool.shutdown(wait=True, cancel_futures=True)
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

        return client.get_executor(pure=False), close_local
    client = Client("tcp://" + spec.removeprefix(DASK_SCHEME))
    return client.get_executor(pure=False), client.close
