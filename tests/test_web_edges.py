"""Who may ask the dashboard: tokens, hosts, and pages of other sites, against a real
service on loopback, and a real browser (Debian's Chromium) for a page of another site."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright

from tests.conftest import WriteNote
from vault_bmad.config import load_settings
from vault_bmad.service import Service
from vault_bmad.web.app import MAX_BODY_BYTES, TOKEN_COOKIE
from vault_bmad.web.csrf import HEADER

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def serve(vault: Path, **overrides: object) -> Service:
    running = Service(vault, load_settings(vault, None, overrides={"port": 0, **overrides}))
    running.start()
    deadline = time.monotonic() + 10
    while [t.status for t in running.snapshot().tasks] != ["done"]:
        assert time.monotonic() < deadline, "the task did not run"
        time.sleep(0.05)
    return running


@pytest.fixture
def vault_with_a_task(vault: Path, write: WriteNote) -> Path:
    write("Agents/Writer.md", "---\ntype: agent\n---\nWrites.\n")
    write("Tasks/Hello.md", "---\ntype: task\n---\nSay hello.\n")
    return vault


@pytest.fixture
def open_service(vault_with_a_task: Path) -> Iterator[Service]:
    running = serve(vault_with_a_task)
    try:
        yield running
    finally:
        running.stop()


def test_a_wrong_token_never_becomes_the_cookie(vault_with_a_task: Path) -> None:
    running = serve(vault_with_a_task, token="s3cret")
    try:
        wrong = httpx.get(running.url + "?token=wrong", timeout=30)
        assert wrong.status_code == 401
        assert TOKEN_COOKIE not in wrong.cookies and "set-cookie" not in wrong.headers
        right = httpx.get(running.url + "?token=s3cret", timeout=30)
        assert right.status_code == 200 and right.cookies[TOKEN_COOKIE] == "s3cret"
        carried = httpx.get(running.url + "tasks", cookies={TOKEN_COOKIE: "s3cret"}, timeout=30)
        assert carried.status_code == 200
        # a right cookie and a wrong query token: refused, and the cookie stays right
        mixed = httpx.get(
            running.url + "?token=wrong", cookies={TOKEN_COOKIE: "s3cret"}, timeout=30
        )
        assert mixed.status_code == 401 and "set-cookie" not in mixed.headers
    finally:
        running.stop()


def test_posts_from_another_origin_are_refused(open_service: Service) -> None:
    page = httpx.get(open_service.url + "tasks/tasks/hello", timeout=30)
    found = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert found is not None
    rerun = open_service.url + "api/tasks/tasks/hello/rerun"
    own_origin = open_service.url.rstrip("/")
    for origin in ("http://evil.example", "null", own_origin.replace("127.0.0.1", "localhost")):
        refused = httpx.post(rerun, headers={HEADER: found[1], "Origin": origin})
        assert refused.status_code == 403, origin
    accepted = httpx.post(rerun, headers={HEADER: found[1], "Origin": own_origin})
    assert accepted.status_code == 200 and accepted.json() == {"rerun": "tasks/hello"}
    huge = httpx.post(rerun, headers={HEADER: found[1]}, content=b"x" * (MAX_BODY_BYTES + 1))
    assert huge.status_code == 413


def test_every_loopback_name_is_a_host(open_service: Service) -> None:
    port = open_service.url.rstrip("/").rsplit(":", 1)[1]
    health = open_service.url + "api/health"
    for host in (f"[::1]:{port}", "[::1]", f"localhost:{port}", f"127.0.0.1:{port}"):
        assert httpx.get(health, headers={"Host": host}, timeout=30).status_code == 200, host
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example", "[::2]"):
        assert httpx.get(health, headers={"Host": host}, timeout=30).status_code == 400, host


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium")
def test_an_image_on_another_site_gets_no_work_done(
    open_service: Service, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A page on http://localhost asks for the dashboard's most expensive answer as an
    `<img>`: the browser names its site, and the service refuses before any work. The
    browser hides the answer from the page, so the service's access log tells."""
    target = open_service.url + "api/metrics?since=100000d"
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text(f'<!doctype html><img src="{target}">')
    handler = partial(SimpleHTTPRequestHandler, directory=str(tmp_path / "site"))
    other = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    caplog.set_level(logging.INFO, logger="werkzeug")

    def answered() -> list[str]:
        return [r.getMessage() for r in caplog.records if "/api/metrics" in r.getMessage()]

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                browser.new_page().goto(f"http://localhost:{other.server_port}/index.html")
                deadline = time.monotonic() + 10
                while not answered():
                    assert time.monotonic() < deadline, "the image was never asked for"
                    time.sleep(0.05)
            finally:
                browser.close()
    finally:
        other.shutdown()
        other.server_close()
    [line] = answered()
    assert '" 403 ' in line
    assert (
        httpx.get(target, timeout=30).status_code == 200
    )  # the same request from no site is answered
