"""Every setting, declared once with its default, help and bounds, and the names other layers
share (balancing strategies, the executor spec, the state database's file name)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

from vault_bmad.errors import ConfigError
from vault_bmad.prices import Prices

ENV_PREFIX = "VAULT_BMAD_"
VAULT_FILE_NAME = "vault-bmad.toml"
DEFAULT_SOURCE = "default"

# Why a setting may not come from the vault file, which is often synced or shared.
RUNS_CODE = "it lets the vault run programs on this machine"
SPENDS_MONEY = "it decides where LLM requests go, and so what they cost"
HOLDS_SECRET = "it holds a secret"
EXPOSES_SERVICE = "it decides who can reach the dashboard"
LEAVES_VAULT = "it can point the service's files outside the vault"

SENDS_WORK_AWAY = "it decides which machines the vault's tasks and notes are sent to"
STATES_COSTS = "it decides what LLM calls are reported to cost"

# How the balancer picks an agent; engine/balancer.py says what each strategy does.
Strategy = Literal["round_robin", "weighted_round_robin", "least_connections", "adaptive"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)

MAX_OUTPUT_BYTES = 4 * 1024 * 1024  # an output note stays under the 5 MiB a note may be
STATE_DB = "state.db"  # the metrics store, inside the `state_dir` folder
DASK_SCHEME = "dask://"  # `executor` joins a running Dask scheduler at dask://HOST:PORT


def check_executor_spec(spec: str) -> str:
    """`spec` if it is `thread`, `dask` or `dask://HOST:PORT`; ConfigError otherwise."""
    if spec in ("thread", "dask"):
        return spec
    if spec.startswith(DASK_SCHEME):
        host, _, port = spec.removeprefix(DASK_SCHEME).rpartition(":")
        if host and port.isdigit() and 0 < int(port) < 65536:
            return spec
    raise ConfigError(f"executor {spec!r} is not `thread`, `dask` or `dask://HOST:PORT`")


@dataclass(frozen=True)
class About:
    """What a setting is for, and where it may come from; attached with `Annotated`."""

    help: str
    unsafe: str = ""  # why the vault file may not set it; "" means it may
    secret: bool = False
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class Settings:
    """Every setting, declared once: `name: Annotated[type, About(help, ...)] = default`."""

    max_concurrent_agents: Annotated[
        int, About("Most tasks running at once, across all agents.", minimum=1, maximum=1000)
    ] = 10
    min_workers: Annotated[
        int, About("Fewest worker threads the pool scales down to.", minimum=1, maximum=1000)
    ] = 1
    max_workers: Annotated[
        int, About("Most worker threads the pool scales up to.", minimum=1, maximum=1000)
    ] = 10
    strategy: Annotated[Strategy, About("How the balancer picks an agent for a task.")] = "adaptive"
    health_threshold: Annotated[
        float,
        About("Health score (0-1) below which an agent gets no new tasks.", minimum=0, maximum=1),
    ] = 0.7
    health_cooldown_s: Annotated[
        float, About("Seconds an unhealthy agent rests before it is tried again.", minimum=0)
    ] = 30.0
    scale_up_utilization: Annotated[
        float, About("Pool utilization (0-1) above which a worker is added.", minimum=0, maximum=1)
    ] = 0.84
    scale_down_utilization: Annotated[
        float,
        About("Pool utilization (0-1) below which a worker is removed.", minimum=0, maximum=1),
    ] = 0.35
    task_timeout_s: Annotated[
        float, About("Seconds a task may run when its note gives no `timeout`.", minimum=0.001)
    ] = 30.0
    retries: Annotated[
        int, About("Retries of a failed task when its note gives no `retries`.", minimum=0)
    ] = 3
    backoff_base_s: Annotated[
        float,
        About("First retry delay in seconds; it doubles per attempt, with jitter.", minimum=0),
    ] = 0.5
    backoff_max_s: Annotated[float, About("Longest retry delay in seconds.", minimum=0)] = 30.0
    aging_step_s: Annotated[
        float,
        About(
            "Seconds a task waits in the queue before its priority rises a level.", minimum=0.001
        ),
    ] = 60.0
    cache_l1_size: Annotated[int, About("Entries in the in-memory L1 cache.", minimum=0)] = 1000
    cache_l1_ttl_s: Annotated[float, About("Seconds an L1 entry lives.", minimum=0)] = 300.0
    cache_l2_size: Annotated[int, About("Entries in the in-memory L2 cache.", minimum=0)] = 10000
    cache_l2_ttl_s: Annotated[float, About("Seconds an L2 entry lives.", minimum=0)] = 3600.0
    cache_l3_size: Annotated[int, About("Entries in the on-disk L3 cache.", minimum=0)] = 100000
    cache_l3_ttl_s: Annotated[float, About("Seconds an L3 entry lives.", minimum=0)] = 86400.0
    prefetch_threshold: Annotated[
        float,
        About(
            "Predicted probability (0-1) above which a result is prefetched.", minimum=0, maximum=1
        ),
    ] = 0.7
    llm_base_url: Annotated[
        str,
        About(
            "Base URL of an OpenAI-compatible server (Ollama's by default).", unsafe=SPENDS_MONEY
        ),
    ] = "http://127.0.0.1:11434/v1"
    llm_api_key: Annotated[
        str,
        About(
            "API key sent as a Bearer token; empty sends none.", unsafe=HOLDS_SECRET, secret=True
        ),
    ] = field(default="", repr=False)
    llm_model: Annotated[str, About("Model used when an agent names none.")] = "llama3.1"
    llm_timeout_s: Annotated[float, About("Seconds to wait for one LLM answer.", minimum=0.001)] = (
        60.0
    )
    llm_give_up_s: Annotated[
        float,
        About(
            "Seconds an LLM server may stay unreachable (or ask to wait) before `run` fails the"
            " tasks waiting for it; `serve` keeps them queued and shows the server down.",
            minimum=1,
        ),
    ] = 60.0
    llm_prices: Annotated[
        Prices,
        About(
            "Price per million tokens of each model, prompt and completion, for the costs"
            ' shown: `[llm_prices]` then `"gpt-4o-mini" = [0.15, 0.6]`.',
            unsafe=STATES_COSTS,
        ),
    ] = field(default_factory=Prices)
    max_question_rounds: Annotated[
        int,
        About(
            "Rounds of questions an agent may ask its user in one run of a task (its"
            " `ask_user`); 0 lets no agent ask, and the llm runtime offers no tool.",
            minimum=0,
            maximum=20,
        ),
    ] = 3
    command_enabled: Annotated[
        bool, About("Turn on the command runtime, which runs programs.", unsafe=RUNS_CODE)
    ] = False
    command_allowlist: Annotated[
        tuple[str, ...],
        About("Programs the command runtime may run; empty allows any.", unsafe=RUNS_CODE),
    ] = ()
    host: Annotated[str, About("Address the dashboard binds to.", unsafe=EXPOSES_SERVICE)] = (
        "127.0.0.1"
    )
    port: Annotated[
        int, About("TCP port of the dashboard; 0 picks a free one.", minimum=0, maximum=65535)
    ] = 8765
    token: Annotated[
        str,
        About("Token the dashboard asks for; empty asks none.", unsafe=HOLDS_SECRET, secret=True),
    ] = field(default="", repr=False)
    report_interval_s: Annotated[
        float, About("Seconds between performance report notes.", minimum=1)
    ] = 3600.0
    debounce_ms: Annotated[
        int, About("Milliseconds the watcher waits for a burst of edits to settle.", minimum=0)
    ] = 200
    state_dir: Annotated[
        str,
        About(
            "Folder for the store (state.db), the disk cache and the lock that keeps a second"
            " process off the vault; relative to the vault.",
            unsafe=LEAVES_VAULT,
        ),
    ] = ".vault-bmad"
    executor: Annotated[
        str,
        About(
            "Pool that runs task attempts: `thread`, `dask` (a local cluster of worker"
            " processes) or `dask://HOST:PORT` (a running Dask scheduler).",
            unsafe=SENDS_WORK_AWAY,
        ),
    ] = "thread"
    max_output_bytes: Annotated[
        int,
        About(
            "Longest output a task may write, in bytes (UTF-8); longer is cut, and the task"
            " says `truncated: true`. At most 4 MiB: a note may be 5.",
            minimum=1024,
            maximum=MAX_OUTPUT_BYTES,
        ),
    ] = MAX_OUTPUT_BYTES
    template_workers: Annotated[
        int, About("Processes that render templates.", minimum=1, maximum=64)
    ] = 2
    template_memory_mb: Annotated[
        int, About("Memory a template process may use, in MiB.", minimum=64)
    ] = 512
    output_folder: Annotated[
        str,
        About(
            "Vault folder for outputs of tasks that name no `output`"
            " (`<folder>/<task's folder>/<task> - result.md`) and of workflow steps that"
            " create no note (`<folder>/<task's folder>/<task>/<step>.md`)."
        ),
    ] = "Outputs"


@dataclass(frozen=True)
class SettingSpec:
    """One declared setting, as read from the `Settings` class."""

    name: str
    kind: Any  # int, float, bool, str, tuple[str, ...] or a Literal
    default: object
    about: About

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()


def _collect_specs() -> tuple[SettingSpec, ...]:
    defaults = Settings()
    specs = []
    for name, hint in get_type_hints(Settings, include_extras=True).items():
        if get_origin(hint) is Annotated:
            kind, about = get_args(hint)[:2]
            specs.append(SettingSpec(name, kind, getattr(defaults, name), about))
    return tuple(specs)


SPECS: tuple[SettingSpec, ...] = _collect_specs()
SPECS_BY_NAME: Mapping[str, SettingSpec] = MappingProxyType({s.name: s for s in SPECS})
