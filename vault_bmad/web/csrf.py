"""CSRF protection for the dashboard's actions: one secret token per app, on every POST.

Pages carry the token in a `<meta name="csrf-token">` tag and in each form's hidden
`csrf_token` field; scripts send it back in the `X-CSRF-Token` header. Another site can
make a browser send a request here but cannot read a page to learn the token, so a
POST without it is refused. Together with the loopback-only Host check (see app.py)
this also stands against DNS rebinding.
"""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, abort, request

FORM_FIELD = "csrf_token"
HEADER = "X-CSRF-Token"
CONFIG_KEY = "VAULT_BMAD_CSRF"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def protect(app: Flask) -> str:
    """Give `app` a fresh token, refuse unsafe requests without it, and offer it to
    templates as `csrf_token`. Returns the token."""
    token = secrets.token_urlsafe(32)
    app.config[CONFIG_KEY] = token

    @app.before_request
    def check_csrf() -> None:
        if request.method in SAFE_METHODS:
            return
        given = request.headers.get(HEADER) or request.form.get(FORM_FIELD, "")
        if not hmac.compare_digest(given.encode(), app.config[CONFIG_KEY].encode()):
            abort(403, description="the form is stale or came from another site: reload")

    @app.context_processor
    def offer_token() -> dict[str, str]:
        return {"csrf_token": app.config[CONFIG_KEY]}

    return token
