"""Settings: each declared once with its default and help, then layered from five sources.

Precedence, lowest first: defaults, `vault-bmad.toml` at the vault's root (harmless
settings only), the user's config file, `VAULT_BMAD_*` environment variables, and
command-line flags. `python -m vault_bmad.config` prints docs/settings.md.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
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
_NO_OVERRIDES: Mapping[str, object] = MappingProxyType({})
_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True}
_BOOL_WORDS |= {"0": False, "false": False, "no": False, "off": False}


def user_config_path(env: Mapping[str, str]) -> Path:
    """`$XDG_CONFIG_HOME/vault-bmad/config.toml`, falling back to `~/.config`."""
    xdg = env.get("XDG_CONFIG_HOME", "")
    if xdg and Path(xdg).is_absolute():  # the XDG spec says to ignore relative paths
        base = Path(xdg)
    else:
        base = Path(env["HOME"]) / ".config" if env.get("HOME") else Path.home() / ".config"
    return base / "vault-bmad" / "config.toml"


def load_settings(
    vault: Path | None,
    config_file: Path | None = None,
    env: Mapping[str, str] = os.environ,
    overrides: Mapping[str, object] = _NO_OVERRIDES,
) -> Settings:
    """Layer defaults, the vault file, the user's file, env and overrides (flags) into Settings.

    Override values of None are skipped, so unset command-line options can be passed through.
    Raises ConfigError listing every problem, each naming its key and source.
    """
    values: dict[str, Any] = {s.name: s.default for s in SPECS}
    sources = dict.fromkeys(values, DEFAULT_SOURCE)
    problems: list[str] = []
    user_file = config_file if config_file is not None else user_config_path(env)

    def apply(name: str, raw: object, source: str, *, from_text: bool) -> None:
        try:
            values[name] = _convert(SPECS_BY_NAME[name], raw, source, from_text=from_text)
            sources[name] = source
        except ConfigError as exc:
            problems.append(str(exc))

    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"config file {config_file} does not exist")
    vault_file = vault / VAULT_FILE_NAME if vault is not None else None
    if vault_file is not None and vault_file.is_file():
        source = f"vault file {vault_file}"
        for key, raw in _read_toml(vault_file).items():
            if not _known(key, source, key, problems):
                continue
            spec = SPECS_BY_NAME[key]
            if spec.about.unsafe:
                problems.append(
                    f"{key} is not allowed in the vault file {vault_file}: {spec.about.unsafe}. "
                    f"Set it in your config file ({user_file}) or {spec.env_var} instead."
                )
            else:
                apply(key, raw, source, from_text=False)
    if user_file.is_file():
        source = f"config file {user_file}"
        for key, raw in _read_toml(user_file).items():
            if _known(key, source, key, problems):
                apply(key, raw, source, from_text=False)
    for var, raw in sorted(env.items()):
        if var.startswith(ENV_PREFIX):
            name = var.removeprefix(ENV_PREFIX).lower()
            source = f"environment variable {var}"
            if _known(name, source, var, problems, shown=lambda n: ENV_PREFIX + n.upper()):
                apply(name, raw, source, from_text=True)
    for name, raw in overrides.items():
        if raw is not None and _known(name, "command line", name, problems):
            apply(name, raw, "command line", from_text=isinstance(raw, str))
    if not problems:
        problems.extend(_inconsistencies(values, sources))
    if problems:
        raise ConfigError("\n".join(problems))
    return Settings(**values)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None


def _known(
    name: str,
    source: str,
    shown_key: str,
    problems: list[str],
    shown: Callable[[str], str] = str,
) -> bool:
    """True if `name` is a setting; otherwise record a problem suggesting the closest one."""
    if name in SPECS_BY_NAME:
        return True
    close = difflib.get_close_matches(name, list(SPECS_BY_NAME), n=1)
    hint = f"; did you mean {shown(close[0])}?" if close else ""
    problems.append(f"{source}: unknown setting {shown_key}{hint}")
    return False


def _convert(spec: SettingSpec, raw: object, source: str, *, from_text: bool) -> object:
    """Check and convert one value; from_text means it came as a string (env or flag)."""
    try:
        value = _coerce(spec.kind, raw, from_text)
    except ValueError as exc:
        shown = "" if spec.about.secret else f", not {raw!r}"
        raise ConfigError(f"{source}: {spec.name} must be {exc}{shown}") from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = spec.about.minimum, spec.about.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
            raise ConfigError(f"{source}: {spec.name} must be {bounds}, not {value!r}")
    return value


def _coerce(kind: Any, raw: object, from_text: bool) -> object:
    """Return raw as `kind`, or raise ValueError saying what was expected."""
    text = raw.strip() if from_text and isinstance(raw, str) else None
    if kind is Prices:
        return Prices.parse(raw, from_text)
    if get_origin(kind) is Literal:
        choices = get_args(kind)
        if raw in choices or text in choices:
            return text if text in choices else raw
        raise ValueError("one of " + ", ".join(choices))
    if get_origin(kind) is tuple:
        if text is not None:
            return tuple(part.strip() for part in text.split(",") if part.strip())
        if isinstance(raw, list | tuple) and all(isinstance(item, str) for item in raw):
            return tuple(raw)
        raise ValueError("a list of strings")
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if text is not None and text.lower() in _BOOL_WORDS:
            return _BOOL_WORDS[text.lower()]
        raise ValueError("true or false")
    if kind is int:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if text is not None:
            with contextlib.suppress(ValueError):
                return int(text)
        raise ValueError("a whole number")
    if kind is float:
        number = math.nan
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            number = float(raw)
        elif text is not None:
            with contextlib.suppress(ValueError):
                number = float(text)
        if not math.isfinite(number):
            raise ValueError("a finite number")
        return number
    if kind is str:
        if isinstance(raw, str):
            return raw
        raise ValueError("a string")
    raise TypeError(f"no conversion for settings of type {kind!r}")


def _inconsistencies(values: Mapping[str, Any], sources: Mapping[str, str]) -> list[str]:
    """Problems between settings that are each fine alone."""
    problems = []
    for low, relation, high in (
        ("min_workers", "may not exceed", "max_workers"),
        ("scale_down_utilization", "must be below", "scale_up_utilization"),
        ("backoff_base_s", "may not exceed", "backoff_max_s"),
    ):
        below, ceiling = values[low], values[high]
        if below > ceiling or (relation == "must be below" and below == ceiling):
            problems.append(
                f"{low} ({below!r}, from {sources[low]}) {relation} "
                f"{high} ({ceiling!r}, from {sources[high]})"
            )
    try:
        check_executor_spec(values["executor"])
    except ConfigError as exc:
        problems.append(f"{exc} (from {sources['executor']})")
    folder = str(values["output_folder"]).replace("\\", "/")
    parts = [part for part in folder.split("/") if part not in ("", ".")]
    if not parts or folder.startswith("/") or any(p == ".." or p.startswith(".") for p in parts):
        problems.append(
            f"output_folder ({folder!r}, from {sources['output_folder']}) must be a folder "
            "inside the vault that Obsidian shows: no leading '/', no '..', no hidden folder"
        )
    return problems


def type_label(kind: Any) -> str:
    """A reader's name for a setting's type."""
    if get_origin(kind) is Literal:
        return " \\| ".join(f"`{choice}`" for choice in get_args(kind))
    if get_origin(kind) is tuple:
        return "list of strings"
    names = {bool: "true/false", int: "integer", float: "number", str: "string"}
    if kind is Prices:
        return "table"
    return names[kind]


def _default_label(spec: SettingSpec) -> str:
    default = spec.default
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, tuple):
        return "`[]`" if not default else f"`{list(default)!r}`"
    if isinstance(default, Prices):
        return "`{}`"
    if isinstance(default, str):
        return f'`"{default}"`'
    return f"`{default!r}`"


def settings_markdown() -> str:
    """docs/settings.md, generated from the declarations so it cannot drift."""
    lines = [
        "# Settings",
        "",
        "<!-- Generated from vault_bmad/config.py by `python -m vault_bmad.config`;"
        " do not edit by hand. -->",
        "",
        "Each setting is read from these places; a later one wins:",
        "",
        "1. its default, below;",
        f"2. `{VAULT_FILE_NAME}` at the vault's root (harmless settings only);",
        "3. your config file: `$XDG_CONFIG_HOME/vault-bmad/config.toml`, or"
        " `~/.config/vault-bmad/config.toml`, or the file given with `--config`;",
        f"4. environment variables named `{ENV_PREFIX}` plus the setting's name in capitals;",
        "5. command-line flags.",
        "",
        "The TOML files hold top-level keys, such as `max_workers = 8`. In an environment",
        "variable a list is comma-separated and a true/false is one of"
        " `true`, `false`, `1`, `0`, `yes`, `no`, `on`, `off`.",
        "",
        "Settings that run code, spend money, hold a secret or expose the service are refused",
        "from the vault file, because a vault is often synced or shared. Set them in your",
        "config file or the environment.",
        "",
        "| Setting | Type | Default | In the vault file | Description |",
        "|---|---|---|---|---|",
    ]
    for spec in SPECS:
        allowed = "yes" if not spec.about.unsafe else f"no: {spec.about.unsafe}"
        lines.append(
            f"| `{spec.name}` | {type_label(spec.kind)} | {_default_label(spec)} "
            f"| {allowed} | {spec.about.help.replace('|', chr(92) + '|')} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(settings_markdown(), end="")
