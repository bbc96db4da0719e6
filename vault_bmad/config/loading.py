"""Settings layered from five sources, lowest first: defaults, `vault-bmad.toml` at the
vault's root (harmless settings only), the user's config file, `VAULT_BMAD_*` environment
variables, and command-line flags."""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from vault_bmad.config.convert import convert
from vault_bmad.config.settings import (
    DEFAULT_SOURCE,
    ENV_PREFIX,
    SPECS,
    SPECS_BY_NAME,
    VAULT_FILE_NAME,
    Settings,
    check_executor_spec,
)
from vault_bmad.errors import ConfigError

_NO_OVERRIDES: Mapping[str, object] = MappingProxyType({})


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
            values[name] = convert(SPECS_BY_NAME[name], raw, source, from_text=from_text)
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
