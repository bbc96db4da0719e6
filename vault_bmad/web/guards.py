"""Who may ask the dashboard anything: the checks every request passes before a view runs.

- Host: without a token the service listens on loopback only, and a request must name a
  loopback host (`127.0.0.1`, `localhost`, `[::1]`, any port), so a page from elsewhere
  that rebinds its DNS name to 127.0.0.1 is refused.
- Token: with one set, every request carries it: `Authorization: Bearer <token>`, the
  cookie, or `?token=` once, which sets the cookie only when it is the right token.
- Other sites: a browser names the site a request comes from (`Sec-Fetch-Site`, and
  `Origin` on a POST). A request another site's page makes (an `<img>`, a script, a
  form) is refused before any work; following a link here is not. A request naming no
  site (a script, curl) passes these two checks, and still needs the CSRF token to POST
  (csrf.py).
- Size: a body over the app's MAX_CONTENT_LENGTH is refused before it is read.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import Flask, Response, abort, g, request

from vault_bmad.web import csrf

TOKEN_COOKIE = "vault_bmad_token"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
_ACCEPTED_TOKEN = "vault_bmad_token_from_query"


def host_name(host: str) -> str:
    """The name in a `Host` header, without its port: "[::1]:8765" is "[::1]"."""
    if host.startswith("["):
        return host[: host.find("]") + 1] if "]" in host else host
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def same_origin(origin: str, host_url: str) -> bool:
    """Whether the `Origin` header names this server (scheme, host and port)."""
    given, own = urlsplit(origin), urlsplit(host_url)
    return (given.scheme, given.netloc.lower()) == (own.scheme, own.netloc.lower())


def protect(app: Flask, token: str | None) -> None:
    """Check every request of `app` as the module says; `token` None or "" asks none."""
    expected = token or None

    @app.before_request
    def check_host() -> None:
        if expected is None and host_name(request.host.lower()) not in LOOPBACK_NAMES:
            abort(
                400, description=f"this dashboard answers loopback names only, not {request.host!r}"
            )

    @app.before_request
    def check_token() -> None:
        if expected is None:
            return
        header = request.headers.get("Authorization", "")
        from_query = request.args.get("token", "")
        given = (
            header.removeprefix("Bearer ").strip()
            or from_query
            or request.cookies.get(TOKEN_COOKIE, "")
        )
        if not hmac.compare_digest(given.encode(), expected.encode()):
            abort(401)
        if from_query and given == from_query:
            g.setdefault(_ACCEPTED_TOKEN, from_query)

    @app.before_request
    def check_site() -> None:
        site = request.headers.get("Sec-Fetch-Site", "")
        if site == "cross-site" and request.headers.get("Sec-Fetch-Mode") != "navigate":
            abort(403, description="requests from another site's page are refused")
        origin = request.headers.get("Origin")
        unsafe = request.method not in csrf.SAFE_METHODS
        if unsafe and origin is not None and not same_origin(origin, request.host_url):
            abort(403, description=f"a request from {origin[:100]!r} is refused")

    @app.before_request
    def check_size() -> None:
        limit = app.config.get("MAX_CONTENT_LENGTH")
        if limit is not None and (request.content_length or 0) > limit:
            abort(413, description=f"a request body may hold at most {limit} bytes")

    @app.after_request
    def keep_token(response: Response) -> Response:
        accepted = g.get(_ACCEPTED_TOKEN)
        if accepted:
            response.set_cookie(TOKEN_COOKIE, accepted, httponly=True, samesite="Strict")
        return response
