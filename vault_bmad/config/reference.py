"""docs/settings.md, generated from the declarations: `python -m vault_bmad.config`."""

from __future__ import annotations

from typing import Any, Literal, get_args, get_origin

from vault_bmad.config.settings import ENV_PREFIX, SPECS, VAULT_FILE_NAME, SettingSpec
from vault_bmad.prices import Prices


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
        "<!-- Generated from vault_bmad/config/ by `python -m vault_bmad.config`;"
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
