"""Plotly's bundles: gzipped once, asked for by their content hash, kept by the browser.

Chart pages load Plotly's cartesian bundle (vendor/, from the npm package
plotly.js-cartesian-dist-min): it holds every trace type the dashboard draws but WebGL's,
in a third of the full bundle's size and run time. A figure of another type (`scattergl`,
past `WEBGL_FROM` points) makes dashboard.js load the full bundle of the installed plotly
package and redraw with it. Each bundle is compressed on its first request and held in
memory; its URL carries a hash of its bytes, so the browser keeps it a year without asking
again, and Chromium keeps its compiled code for the next visit.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from flask import Blueprint, Response, abort, request, url_for

__all__ = ["BUNDLES", "CARTESIAN", "CARTESIAN_TRACES", "FULL", "assets"]

A_YEAR_S = 365 * 86_400
CARTESIAN = "plotly-cartesian.min.js"
FULL = "plotly.min.js"
# The trace types of the cartesian bundle, as its package's README lists them.
CARTESIAN_TRACES = (
    "bar",
    "box",
    "contour",
    "heatmap",
    "histogram",
    "histogram2d",
    "histogram2dcontour",
    "image",
    "pie",
    "scatter",
    "scatterternary",
    "violin",
)


@dataclass(frozen=True)
class Bundle:
    path: Path

    @functools.cached_property
    def data(self) -> bytes:
        return self.path.read_bytes()

    @functools.cached_property
    def version(self) -> str:
        return hashlib.sha256(self.data).hexdigest()[:20]

    @functools.cached_property
    def gzipped(self) -> bytes:
        return gzip.compress(self.data, compresslevel=9, mtime=0)


BUNDLES: dict[str, Bundle] = {
    CARTESIAN: Bundle(Path(__file__).resolve().parent / "vendor" / CARTESIAN),
    FULL: Bundle(Path(str(files("plotly") / "package_data" / FULL))),
}

assets = Blueprint("assets", __name__)


@assets.app_context_processor
def plotly_context() -> dict[str, object]:
    """What charts_head.html names: the bundles' versioned URLs, the cartesian one's traces."""

    def url(name: str) -> str:
        return url_for("assets.bundle", name=name, v=BUNDLES[name].version)

    return {"plotly": {"cartesian": url(CARTESIAN), "full": url(FULL), "traces": CARTESIAN_TRACES}}


@assets.get("/assets/<name>")
def bundle(name: str) -> Response:
    """A bundle, gzipped when the browser accepts it (Flask-Compress leaves an encoded
    answer alone). Asked for with its version, it is immutable for a year."""
    found = BUNDLES.get(name)
    if found is None:
        abort(404, description=f"There is no asset {name!r}.")
    gzipped = request.accept_encodings["gzip"] > 0
    response = Response(found.gzipped if gzipped else found.data, mimetype="text/javascript")
    if gzipped:
        response.headers["Content-Encoding"] = "gzip"
    response.vary.add("Accept-Encoding")
    response.set_etag(f"{found.version}-{'gzip' if gzipped else 'identity'}")
    response.cache_control.public = True
    response.cache_control.max_age = A_YEAR_S
    if request.args.get("v") == found.version:
        response.cache_control.immutable = True
    response.make_conditional(request)
    return response
