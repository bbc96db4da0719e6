"""Benchmark a chart page's first load in a real browser, against two peers in the same run.

A real `Service` over a copy of sample_vault/ with an hour of recorded history (900
attempts, cache samples), served on loopback; Debian's Chromium driven by Playwright.

First load: from `page.goto` to all five overview charts drawn with their data (each
chart's Plotly SVG holding its traces), in a fresh browser context: nothing cached, no
compiled code kept. Reload: the same page again in that context, the bundle cached.
In-page milestones, from the navigation's start: the page's HTML, the first data, Plotly's
bundle received and run, the charts drawn.

Arms, interleaved round by round so they share the machine's load:
- `served`: the dashboard as it is served.
- `identity`: the same, with every request's `Accept-Encoding` set to `identity` (extra
  headers of the context, which Chromium sends as they are), so everything comes
  uncompressed. (Rewriting the header in a route did not reach the server: it got zstd.)
- `full_bundle`: the same, with the request for Plotly's cartesian bundle sent to the full
  bundle of the plotly package instead, as the pages loaded it before.

Prints one JSON object: medians and p95 in ms, the milestones' medians, what Plotly's
bundle weighed on the wire, and the served arm's ratios to the peers.
Run: `PYTHONPATH=. .venv/bin/python benchmarks/page_load_bench.py [--rounds 7]`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Page, Response, sync_playwright

from tests.dashboard_history import cache_samples, history, record
from vault_bmad.config import load_settings
from vault_bmad.service import Service
from vault_bmad.web.assets import BUNDLES, CARTESIAN, FULL

SAMPLE = Path(__file__).resolve().parent.parent / "sample_vault"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
AGENTS = ("analyst", "architect", "dev", "pm", "qa", "ux-expert")
CHARTS = 5
DRAWN = f"""() => {{
  const charts = [...document.querySelectorAll('[data-chart]')];
  return charts.length === {CHARTS} && charts.every((node) =>
    node.querySelector('.main-svg') && node._fullData && node._fullData.length > 0);
}}"""
# Marks the in-page moments: Plotly's bundle run, the charts drawn (checked every frame).
MILESTONES = f"""
window.__drawn = null; window.__plotly = null;
document.addEventListener('load', (event) => {{
  if (event.target.id === 'plotly') window.__plotly = performance.now();
}}, true);
const check = () => {{
  if (document.body && ({DRAWN})()) window.__drawn = performance.now();
  else requestAnimationFrame(check);
}};
requestAnimationFrame(check);
"""
READ_MILESTONES = """() => {
  const entries = performance.getEntriesByType('resource');
  const end = (part) => {
    const found = entries.find((entry) => entry.name.includes(part));
    return found ? found.responseEnd : null;
  };
  return {
    html: performance.getEntriesByType('navigation')[0].responseEnd,
    data: end('/api/metrics'),
    bundle_received: end('/assets/plotly'),
    bundle_run: window.__plotly,
    drawn: window.__drawn,
  };
}"""


def load(page: Page, url: str) -> float:
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_function(DRAWN, timeout=60_000)
    return (time.perf_counter() - started) * 1000.0


def identity(context: BrowserContext, page: Page, base: str) -> None:
    context.set_extra_http_headers({"Accept-Encoding": "identity"})


def full_bundle(context: BrowserContext, page: Page, base: str) -> None:
    full = f"{base}assets/{FULL}?v={BUNDLES[FULL].version}"
    page.route(f"**/assets/{CARTESIAN}*", lambda route: route.continue_(url=full))


def served(context: BrowserContext, page: Page, base: str) -> None:
    pass


ARMS: dict[str, Callable[[BrowserContext, Page, str], None]] = {
    "served": served,
    "identity": identity,
    "full_bundle": full_bundle,
}


class Arm:
    def __init__(self) -> None:
        self.first: list[float] = []
        self.again: list[float] = []
        self.milestones: list[dict[str, float]] = []
        self.wire: set[str] = set()

    def round(self, browser: Browser, url: str, setup: Callable[..., None]) -> None:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.add_init_script(MILESTONES)
        page = context.new_page()
        setup(context, page, url)

        def seen(response: Response) -> None:
            if "/assets/plotly" in response.url and response.status == 200:
                encoding = response.headers.get("content-encoding", "identity")
                length = response.headers.get("content-length", "?")
                self.wire.add(f"{response.url.split('/')[-1].split('?')[0]}: {encoding} {length} B")

        page.on("response", seen)
        self.first.append(load(page, url))
        self.milestones.append(page.evaluate(READ_MILESTONES))
        self.again.append(load(page, url))
        context.close()

    def result(self) -> dict[str, Any]:
        names = self.milestones[0].keys()
        return {
            "first_load_ms": _summary(self.first),
            "in_page_ms": {
                name: round(statistics.median(m[name] for m in self.milestones), 1)
                for name in names
            },
            "reload_ms": _summary(self.again),
            "plotly_on_the_wire": sorted(self.wire),
        }


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 1),
        "p95": round(ordered[max(0, -(-95 * len(ordered) // 100) - 1)], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    rounds = parser.parse_args().rounds
    arms = {name: Arm() for name in ARMS}
    with tempfile.TemporaryDirectory() as folder:
        vault = Path(folder) / "Sample Vault"
        shutil.copytree(SAMPLE, vault, ignore=shutil.ignore_patterns(".vault-bmad"))
        overrides = {"port": 0, "cache_l1_size": 0}
        settings = load_settings(vault, None, {"XDG_CONFIG_HOME": folder}, overrides=overrides)
        service = Service(vault, settings)
        service.start()
        try:
            now = time.time()
            record(service.store, history(now, 900, AGENTS, span_s=3300), cache_samples(now, 55))
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    for setup in ARMS.values():  # the server's first answers, each arm's
                        Arm().round(browser, service.url, setup)
                    for _ in range(rounds):
                        for name, setup in ARMS.items():
                            arms[name].round(browser, service.url, setup)
                finally:
                    browser.close()
        finally:
            service.stop()
    result: dict[str, Any] = {
        "rounds": rounds,
        "first_load": "from page.goto to all 5 overview charts drawn with their data, "
        "in a fresh browser context (nothing cached); in_page_ms from the navigation's start",
        **{name: arm.result() for name, arm in arms.items()},
    }
    mine = result["served"]["first_load_ms"]["median"]
    for peer in ("identity", "full_bundle"):
        result[f"first_load_ratio_to_{peer}"] = round(
            mine / result[peer]["first_load_ms"]["median"], 2
        )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
