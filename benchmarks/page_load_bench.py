"""Benchmark a chart page's first load in a real browser: compressed against uncompressed.

A real `Service` over a copy of sample_vault/ with an hour of recorded history (900
attempts, cache samples), served on loopback; Debian's Chromium driven by Playwright. Each
round opens a fresh browser context (nothing cached) and times the overview from the
request to all five charts drawn. The peer, in the same run: the same pages with every
request's `Accept-Encoding` set to `identity`, as the dashboard was served before it
compressed. Then a reload in the same context, with Plotly's bundle cached.

Prints one JSON object: medians and p95 in ms, the bytes of Plotly's bundle on the wire.
Run: `.venv/bin/python benchmarks/page_load_bench.py [--rounds 7]` (about a minute).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Route, sync_playwright

from tests.dashboard_history import cache_samples, history, record
from vault_bmad.config import load_settings
from vault_bmad.service import Service

SAMPLE = Path(__file__).resolve().parent.parent / "sample_vault"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
AGENTS = ("analyst", "architect", "dev", "pm", "qa", "ux-expert")
DRAWN = "() => document.querySelectorAll('[data-chart] .main-svg').length >= 5"


def uncompressed(route: Route) -> None:
    route.continue_(headers={**route.request.headers, "accept-encoding": "identity"})


def load(page: Page, url: str) -> float:
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_function(DRAWN, timeout=30_000)
    return (time.perf_counter() - started) * 1000.0


def measure(browser: Browser, url: str, rounds: int, compressed: bool) -> dict[str, Any]:
    first, again, wire = [], [], []
    for _ in range(rounds):
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        if not compressed:
            page.route("**/*", uncompressed)
        sizes: list[int] = []

        def seen(response: Any, sizes: list[int] = sizes) -> None:
            if "plotly" in response.url and response.status == 200:
                sizes.append(len(response.body()))  # decoded: ask the headers for the wire
                encoding = response.headers.get("content-encoding", "identity")
                length = response.headers.get("content-length")
                wire.append((encoding, int(length) if length else None))

        page.on("response", seen)
        first.append(load(page, url))
        again.append(load(page, url))
        context.close()
    return {
        "first_load_ms": _summary(first),
        "reload_ms": _summary(again),
        "plotly_on_the_wire": sorted({f"{e} {n} B" for e, n in wire}),
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
                    load(browser.new_page(), service.url)  # the server's first answers
                    result = {
                        "rounds": rounds,
                        "compressed": measure(browser, service.url, rounds, True),
                        "uncompressed": measure(browser, service.url, rounds, False),
                    }
                finally:
                    browser.close()
        finally:
            service.stop()
    mine = result["compressed"]["first_load_ms"]["median"]  # type: ignore[index]
    peer = result["uncompressed"]["first_load_ms"]["median"]  # type: ignore[index]
    result["first_load_ratio"] = round(mine / peer, 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
