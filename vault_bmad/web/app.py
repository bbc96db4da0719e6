"""The Flask app: the dashboard's pages, its JSON API and Prometheus `/metrics`.

`create_app(backend, token)` takes what it serves as a value, so tests hand it a real
service. Who may ask is checked first (guards.py: loopback hosts, the token, requests
from other sites), every POST needs the CSRF token (csrf.py), and a strict
Content-Security-Policy lets only the dashboard's own scripts run. Answers go out
compressed (Flask-Compress) when the browser accepts it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from flask import Flask, Response, render_template, request
from flask_compress import Compress
from werkzeug.exceptions import HTTPException, InternalServerError

from vault_bmad.metrics import series
from vault_bmad.web import csrf, guards
from vault_bmad.web.api import api, json_response
from vault_bmad.web.assets import assets
from vault_bmad.web.pages import pages
from vault_bmad.web.prometheus import CONTENT_TYPE, figures_exposition
from vault_bmad.web.state import Backend, Dashboard, dashboard, install

__all__ = ["LOOPBACK_NAMES", "TOKEN_COOKIE", "Backend", "create_app"]

TOKEN_COOKIE = guards.TOKEN_COOKIE
LOOPBACK_NAMES = guards.LOOPBACK_NAMES
PROMETHEUS_RANGE = "1h"  # the figures /metrics shows cover the last hour
PACKAGE = Path(__file__).resolve().parent
MAX_BODY_BYTES = 64 * 1024  # a POST's body: the dashboard's forms hold a token at most
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        # Plotly adds its own stylesheet at run time; scripts stay strictly our own.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)


def create_app(
    backend: Backend, token: str | None = None, *, wall: Callable[[], float] = time.time
) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(PACKAGE / "templates"),
        static_folder=str(PACKAGE / "static"),
    )
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    # Pages and the JSON go out compressed (Plotly's bundles are, once: assets.py). Streamed
    # files (the small static ones) go as they are: Flask-Compress would leave them open.
    app.config["COMPRESS_STREAMS"] = False
    Compress(app)
    install(app, Dashboard(backend, wall=wall))
    guards.protect(app, token)
    csrf.protect(app)

    @app.after_request
    def secure_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response | tuple[str, int]:
        code = error.code or 500
        if request.path.startswith("/api/") or request.path == "/metrics":
            return json_response({"error": error.description, "status": code}, code)
        page = render_template("error.html", code=code, name=error.name, error=error.description)
        return page, code

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> Response | tuple[str, int]:
        """A request that failed: logged, counted for `/api/health`, answered 500."""
        app.logger.error("%s %s failed", request.method, request.path, exc_info=error)
        dashboard().failures.record(request.method, request.path, error)
        return http_error(InternalServerError())

    @app.get("/metrics")
    def metrics() -> Response:
        board = dashboard()
        digest = board.digest(board.time_range(PROMETHEUS_RANGE))
        agents = series.agent_figures(
            digest, {agent.id: agent.capacity for agent in backend.snapshot().agents}
        )
        text = backend.metrics_text() + figures_exposition(series.overall(digest, agents), agents)
        return Response(text, content_type=CONTENT_TYPE)

    app.register_blueprint(api)
    app.register_blueprint(pages)
    app.register_blueprint(assets)
    return app
