"""An LLM server's URL as vault-bmad shows it: never with a user name or password."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def chat_url(base_url: str) -> str:
    """The chat completions URL of a base URL, without any credentials in it: the endpoint
    as messages, health and the dashboard name it."""
    return shown_url(base_url.rstrip("/") + "/chat/completions")


def shown_url(url: str) -> str:
    """The URL without any user name or password in it, for messages."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))
