"""Runtimes whose work runs on another executor's workers, in other processes or machines.

A `RemoteRuntime` stands in for a runtime in the service process. Its `run` sends the
request and a small `RuntimeSpec` (plain settings, never the API key) to the executor and
waits for the answer; the worker builds the real runtime once per spec and keeps it.
The cache, retries, timeouts, priorities and every vault write stay in the service
process, which calls `run` from its own worker threads.
"""

from __future__ import annotations

import os
import pickle
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import ExitStack
from dataclasses import dataclass, fields, replace

from vault_bmad.config import ENV_PREFIX, Settings
from vault_bmad.errors import (
    AttemptFailed,
    Failure,
    FailureKind,
    PermanentFailure,
    TaskTimeout,
    VaultBmadError,
)
from vault_bmad.runtimes.base import RunRequest, Runtime, RuntimeOutput, build_runtimes
from vault_bmad.runtimes.executors import Workers, is_remote, make_executor
from vault_bmad.runtimes.llm_url import chat_url

RUNTIME_NAMES = ("template", "llm", "command")
REMOTE_GRACE_S = 2.0  # time for the trip to a worker and back, beyond the task's timeout
API_KEY_VARIABLE = ENV_PREFIX + "LLM_API_KEY"


class NotPicklable(PermanentFailure):
    """Part of a task attempt cannot be sent to a worker in another process."""

    def __init__(self, task_id: str, part: str, reason: str) -> None:
        super().__init__(task_id, part, reason)  # all three in args, so it pickles
        self.task_id, self.part, self.reason = task_id, part, reason

    def __str__(self) -> str:
        return (
            f"task {self.task_id}: its {self.part} cannot be sent to a worker process "
            f"(it does not pickle: {self.reason})"
        )


@dataclass(frozen=True)
class RuntimeSpec:
    """What a worker needs to build the runtimes: settings only, and no secret."""

    llm_base_url: str
    llm_model: str
    llm_timeout_s: float
    llm_give_up_s: float
    backoff_base_s: float
    backoff_max_s: float
    command_enabled: bool
    command_allowlist: tuple[str, ...]
    template_workers: int
    template_memory_mb: int

    @classmethod
    def from_settings(cls, settings: Settings) -> RuntimeSpec:
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})

    def settings(self, api_key: str) -> Settings:
        return Settings(
            **{f.name: getattr(self, f.name) for f in fields(self)}, llm_api_key=api_key
        )


_worker_runtimes: dict[RuntimeSpec, dict[str, Runtime]] = {}
_worker_lock = threading.Lock()


def run_in_worker(spec: RuntimeSpec, request: RunRequest) -> RuntimeOutput:
    """Run `request` on the worker's runtime for `spec`; the worker's own environment gives
    the LLM API key. Runs in the worker process."""
    with _worker_lock:
        runtimes = _worker_runtimes.get(spec)
        if runtimes is None:
            api_key = os.environ.get(API_KEY_VARIABLE, "")
            runtimes = _worker_runtimes[spec] = build_runtimes(spec.settings(api_key))
    return runtimes[request.runtime].run(request)


def check_picklable(request: RunRequest) -> None:
    """NotPicklable naming the first field of `request` that does not pickle."""
    try:
        pickle.dumps(request)
    except Exception:
        for field in fields(request):
            try:
                pickle.dumps(getattr(request, field.name))
            except Exception as exc:
                raise NotPicklable(request.task_id, field.name, str(exc) or repr(exc)) from None
        raise


class RemoteRuntime:
    """The runtime `name`, run by `workers`; see the module docstring."""

    def __init__(self, name: str, spec: RuntimeSpec, workers: Workers) -> None:
        self.name = name
        self._spec = spec
        self._workers = workers
        self.endpoint = chat_url(spec.llm_base_url) if name == "llm" else None

    def run(self, request: RunRequest) -> RuntimeOutput:
        """The worker's answer; a call Dask ran again after losing its worker counts as
        another call, whose prompt was sent again (its completion is not known)."""
        check_picklable(request)
        call = self._workers.submit(run_in_worker, self._spec, request)
        try:
            output: RuntimeOutput = call.result(timeout=request.timeout + REMOTE_GRACE_S)
        except FutureTimeout:
            call.cancel()
            raise TaskTimeout(f"no answer from the worker within {request.timeout:g} s") from None
        except VaultBmadError:
            raise
        except Exception as exc:
            if not _lost_worker(exc):
                raise
            failure = Failure(
                FailureKind.TRANSIENT, f"the Dask worker running it was lost: {exc}", elsewhere=True
            )
            raise AttemptFailed(failure) from None
        extra = self._workers.runs(call) - 1
        if extra <= 0:
            return output
        return replace(
            output,
            calls=output.calls + extra,
            tokens_in=None if output.tokens_in is None else output.tokens_in * (1 + extra),
        )


def _lost_worker(exc: Exception) -> bool:
    """Whether Dask gave up on a call because workers running it died, or the connection to
    the cluster broke."""
    from distributed import KilledWorker

    return isinstance(exc, KilledWorker | OSError)


def remote_runtimes(settings: Settings, workers: Workers) -> dict[str, Runtime]:
    """Stand-ins for every runtime, each running on `workers`."""
    spec = RuntimeSpec.from_settings(settings)
    return {name: RemoteRuntime(name, spec, workers) for name in RUNTIME_NAMES}


def runtimes_for(settings: Settings, stack: ExitStack) -> dict[str, Runtime]:
    """The runtimes the `executor` setting asks for: here, or on Dask workers whose client
    `stack` closes."""
    if not is_remote(settings.executor):
        return build_runtimes(settings)
    workers, close = make_executor(settings.executor, settings.max_workers)
    stack.callback(close)
    return remote_runtimes(settings, workers)
