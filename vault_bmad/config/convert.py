"""One setting's raw value, from TOML or text (environment, flag), checked and converted."""

from __future__ import annotations

import contextlib
import math
from typing import Any, Literal, get_args, get_origin

from vault_bmad.config.settings import SettingSpec
from vault_bmad.errors import ConfigError
from vault_bmad.prices import Prices

_BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True}
_BOOL_WORDS |= {"0": False, "false": False, "no": False, "off": False}


def convert(spec: SettingSpec, raw: object, source: str, *, from_text: bool) -> object:
    """Check and convert one value; from_text means it came as a string (env or flag)."""
    try:
        value = coerce(spec.kind, raw, from_text)
    except ValueError as exc:
        shown = "" if spec.about.secret else f", not {raw!r}"
        raise ConfigError(f"{source}: {spec.name} must be {exc}{shown}") from None
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = spec.about.minimum, spec.about.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"at least {low:g}" if high is None else f"between {low:g} and {high:g}"
            raise ConfigError(f"{source}: {spec.name} must be {bounds}, not {value!r}")
    return value


def coerce(kind: Any, raw: object, from_text: bool) -> object:
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
