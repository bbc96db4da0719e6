"""The dashboard in a real browser: Debian's Chromium, driven by Playwright, against a real
service over a copy of the sample vault with an hour of recorded history.

Any console error or uncaught exception on a page fails its test. The overview test also
takes a screenshot; with REFRESH_README_SCREENSHOT=1 it refreshes the README's,
docs/images/overview.png, and otherwise leaves the repository alone (not a VAULT_BMAD_*
name: tests/conftest.py keeps those out of every test).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    Route,
    sync_playwright,
)

from tests.conftest import SAMPLE_VAULT
from tests.dashboard_history import cache_samples, history, record
from tests.llm_servers import recorded
from tests.waiting import wait_until
from vault_bmad.config import load_settings
from vault_bmad.metrics.figures import DEFINITIONS
from vault_bmad.runtimes.loopback_llm import Answer, LoopbackLLM
from vault_bmad.service import Service
from vault_bmad.web.assets import CARTESIAN, FULL

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
README_SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "images" / "overview.png"
HOSTILE = "<img src=x onerror=alert(1)>"
AGENTS = ("analyst", "architect", "dev", "pm", "qa", "ux-expert")
SETTLED = {"done", "failed", "blocked", "skipped", "needs-input"}

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"
)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    vault = tmp_path_factory.mktemp("browser") / "Sample Vault"
    shutil.copytree(SAMPLE_VAULT, vault, ignore=shutil.ignore_patterns(".vault-bmad"))
    (vault / "Tasks" / f"{HOSTILE}.md").write_text(
        "---\ntype: task\npriority: low\n---\nSay <script>alert(2)</script> politely.\n"
    )
    (vault / "Agents" / "Gardener.md").write_text(  # a second Winston: a warning
        "---\ntype: agent\nname: Winston\nexpertise: [gardening]\n---\nGrows things.\n"
    )
    isolated = {"XDG_CONFIG_HOME": str(vault.parent / "xdg")}  # no developer's config
    # No live result cache: its counters, starting at zero, would read as a restart after
    # the recorded hour of cache samples.
    # No interval report either: one ends at every hour, which the empty reports page
    # must not meet mid-run (intervals are aligned to the clock; 10**9 s ends in 2033).
    overrides = {"port": 0, "debounce_ms": 50, "cache_l1_size": 0, "report_interval_s": 10**9}
    settings = load_settings(vault, None, isolated, overrides=overrides)
    running = Service(vault, settings)
    running.start()
    try:
        wait_until(
            lambda: (
                bool(running.snapshot().tasks)
                and all(t.status in SETTLED for t in running.snapshot().tasks)
            )
        )
        assert running.orchestrator is not None
        running.orchestrator.notes.flush()  # the notes say what the engine says
        now = time.time()
        record(running.store, history(now, 900, AGENTS, span_s=3300), cache_samples(now, 55))
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Watched:
    """A page whose console errors, uncaught exceptions and dialogs are kept."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("dialog", self._dialog)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"{self.page.url}: {message.text}")

    def _dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def open(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_function(
            "() => document.getElementById('live')?.textContent.startsWith('updated')"
        )


@pytest.fixture(scope="module")
def context(browser: Browser) -> Iterator[BrowserContext]:
    """One context for the module, so Plotly's bundle is fetched and compiled once."""
    opened = browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="light")
    yield opened
    opened.close()


@pytest.fixture
def watched(context: BrowserContext) -> Iterator[Watched]:
    page = Watched(context.new_page())
    yield page
    page.page.close()
    assert page.errors == []
    assert page.dialogs == []


def charts_drawn(page: Page) -> int:
    return page.locator("[data-chart] .main-svg").count()


def test_overview_draws_its_charts_and_follows_the_theme(
    service: Service, watched: Watched, tmp_path: Path
) -> None:
    page = watched.page
    watched.open(service.url)
    charts = page.locator("[data-chart]").count()
    assert charts == 5
    page.wait_for_function(
        f"() => document.querySelectorAll('[data-chart] .main-svg').length >= {charts}"
    )
    page.wait_for_function(
        "() => document.querySelectorAll('#findings > li').length >= 1"
        " && !document.querySelector('#findings > li').textContent.startsWith('…')"
    )
    assert "%" in page.locator("[data-field='utilization']").inner_text()
    assert page.locator("[data-field='throughput']").inner_text() not in ("", "–")
    assert "%" in page.locator("[data-field='hit-rate']").inner_text()
    assert page.locator("#status-counts li").count() >= 1
    bars = page.locator("[data-chart='throughput'] .bars path").count()
    assert bars > 20  # an hour of history, a bar a minute
    page.wait_for_timeout(300)  # let Plotly finish its transitions before the picture
    screenshot = (
        README_SCREENSHOT if os.environ.get("REFRESH_README_SCREENSHOT") else tmp_path / "o.png"
    )
    page.screenshot(path=str(screenshot))
    assert screenshot.stat().st_size > 20_000

    # The theme toggle: auto, light, dark; the charts follow it, and it is remembered.
    font = "document.querySelector('[data-chart]')._fullLayout.font.color"
    light = page.evaluate(font)
    toggle = page.locator("#theme-toggle")
    toggle.click()  # auto -> light
    toggle.click()  # light -> dark
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert toggle.get_attribute("aria-label") == "Theme: dark"
    dark = page.evaluate(font)
    fg = page.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--fg')")
    assert dark != light
    assert dark == fg.strip()
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    toggle.click()  # dark -> auto, for the tests after this one
    assert page.evaluate("localStorage.getItem('vault-bmad-theme')") == "auto"


def test_plotly_s_full_bundle_loads_only_for_a_webgl_chart(
    service: Service, browser: Browser
) -> None:
    fresh = browser.new_context(viewport={"width": 1280, "height": 800})  # nothing cached
    watched = Watched(fresh.new_page())
    page = watched.page
    bundles: list[str] = []
    page.on("request", lambda r: bundles.append(r.url) if "/assets/" in r.url else None)
    watched.open(service.url)
    page.wait_for_function("() => document.querySelectorAll('[data-chart] .main-svg').length >= 5")
    assert [url.split("/assets/")[1].split("?")[0] for url in bundles] == [CARTESIAN]
    # The timeline of the hour's 900 attempts is drawn with WebGL, which needs the full one.
    watched.open(service.url.rstrip("/") + "/timeline")
    page.wait_for_function(
        "() => document.querySelector('[data-chart] canvas')"
        " && document.querySelector('[data-chart]')._fullData.every(t => t.type === 'scattergl')"
    )
    assert any(f"/assets/{FULL}?v=" in url for url in bundles)
    assert page.locator("script[src*='plotly']").count() == 2
    fresh.close()
    assert watched.errors == [] and watched.dialogs == []


# Where the first point that carries a task id is drawn, in page pixels.
FIRST_TASK_POINT = """() => {
  const chart = document.querySelector("[data-chart='chart']");
  const trace = chart._fullData.find((t) => t.customdata && t.customdata.length);
  const { xaxis, yaxis, _size } = chart._fullLayout;
  const box = chart.querySelector(".main-svg").getBoundingClientRect();
  return {
    x: box.left + _size.l + xaxis.l2p(xaxis.d2l(trace.x[0])),
    y: box.top + _size.t + yaxis.l2p(yaxis.d2l(trace.y[0])),
  };
}"""


def test_a_graph_node_opens_its_task_as_soon_as_it_is_drawn(
    service: Service, browser: Browser
) -> None:
    fresh = browser.new_context(viewport={"width": 1280, "height": 800})  # nothing cached
    page = fresh.new_page()
    answered: list[str] = []
    held: list[Route] = []

    def first_answer_only(route: Route) -> None:  # no later poll can attach the click
        if answered:
            route.abort()
        else:
            answered.append(route.request.url)
            route.continue_()

    def hold(route: Route) -> None:  # Plotly comes after the data, as on a slow load
        held.append(route)

    page.route("**/api/graph*", first_answer_only)
    page.route("**/assets/**", hold)
    with page.expect_response("**/api/graph*"):
        page.goto(service.url.rstrip("/") + "/graph", wait_until="domcontentloaded")
    page.wait_for_timeout(300)  # the answer's callback has run, with no Plotly yet
    for route in held:
        route.continue_()
    page.unroute("**/assets/**")
    page.wait_for_function(
        "() => document.querySelectorAll(\"[data-chart='chart'] .scatterlayer .point\").length"
    )
    point = page.evaluate(FIRST_TASK_POINT)
    page.mouse.move(point["x"], point["y"])  # a user hovers first: Plotly clicks what hovers
    page.locator(".hoverlayer .hovertext").wait_for()
    page.mouse.click(point["x"], point["y"])
    page.wait_for_url("**/tasks/**")
    assert len(answered) == 1
    fresh.close()


def test_a_chart_the_api_sends_unchanged_is_not_drawn_again(
    service: Service, watched: Watched
) -> None:
    page = watched.page
    now = int(time.time())  # a range in the past: its figures stay the same
    watched.open(f"{service.url}?range=custom&from={now - 3000}&to={now - 600}")
    page.wait_for_function("() => document.querySelectorAll('[data-chart] .main-svg').length >= 5")
    page.evaluate(
        "() => { window.redrawn = 0; document.querySelector(\"[data-chart='throughput']\")"
        ".on('plotly_afterplot', () => { window.redrawn += 1; }); }"
    )
    for _ in range(2):  # two more answers of the API, the same
        with page.expect_response(lambda r: "/api/metrics?" in r.url, timeout=10_000):
            pass
    page.wait_for_timeout(200)  # their callbacks have run
    assert page.evaluate("window.redrawn") == 0
    toggle = page.locator("#theme-toggle")
    for _ in range(3):  # a theme change redraws it; round to where it was
        toggle.click()
    assert page.evaluate("window.redrawn") >= 1


def test_every_page_in_the_navigation_loads(service: Service, watched: Watched) -> None:
    page = watched.page
    watched.open(service.url)
    links = page.locator("nav a")
    targets = [str(links.nth(n).get_attribute("href")) for n in range(links.count())]
    assert len(targets) == 8
    for target in targets:
        watched.open(service.url.rstrip("/") + target)
        assert page.locator("nav a[aria-current='page']").count() == 1, target
        expected = page.locator("[data-chart]").count()
        if expected:
            page.wait_for_function(
                f"() => document.querySelectorAll('[data-chart] .main-svg').length >= {expected}"
            )
    watched.open(service.url.rstrip("/") + "/reports")
    assert "No reports yet" in page.locator("#reports").inner_text()


def test_the_rerun_button_changes_the_note(service: Service, watched: Watched) -> None:
    page = watched.page
    note = service.vault / "Tasks" / "Write the PRD.md"
    stored = service.store.task("tasks/write-the-prd")
    assert stored is not None and stored.completed_at is not None
    completed = stored.completed_at
    wait_until(lambda: time.time() >= completed + 1.1)  # a new second to write
    before = note.read_text()
    watched.open(service.url.rstrip("/") + "/tasks/tasks/write-the-prd")
    assert page.locator("#attempts tr").count() == 1
    page.locator("#rerun").click()
    page.wait_for_url("**rerun=requested")
    assert "runs again" in page.locator(".notice").inner_text()
    page.wait_for_function("() => document.querySelectorAll('#attempts tr').length === 2")
    page.wait_for_function(
        "() => document.querySelector('[data-field=status]').textContent === 'done'"
    )
    wait_until(lambda: (text := note.read_text()) != before and "status: done" in text)
    after = note.read_text()
    started = [line for line in after.splitlines() if line.startswith("started:")]
    assert started and started[0] not in before


def test_a_hostile_note_name_runs_no_script(service: Service, watched: Watched) -> None:
    page = watched.page
    task_id = next(t.id for t in service.snapshot().tasks if t.title == HOSTILE)
    watched.open(service.url.rstrip("/") + "/tasks")
    page.locator("input[name=q]").fill("onerror")
    page.wait_for_function("() => document.querySelectorAll('#tasks tr').length === 1")
    assert page.locator("#tasks a").first.inner_text() == HOSTILE
    page.locator("#tasks a").first.click()
    page.wait_for_url(f"**/tasks/{task_id}")
    assert page.locator("h1").inner_text().startswith(HOSTILE)
    assert "<script>alert(2)</script>" in page.locator(".note-text").inner_text()
    assert page.locator("main img, main script").count() == 0
    watched.open(service.url.rstrip("/") + "/notes/" + quote(f"Tasks/{HOSTILE}.md"))
    assert page.locator("h1").inner_text() == f"{HOSTILE}.md"
    assert page.evaluate("document.querySelectorAll('img[src=x], main script').length") == 0


def test_definitions_show_as_tooltips(service: Service, watched: Watched) -> None:
    page = watched.page
    watched.open(service.url)
    for name in ("throughput", "utilization", "latency", "hit_rate"):
        tip = page.locator(f".card [data-definition='{name}']")
        text = tip.locator(".tip-text")
        assert not text.is_visible()
        tip.hover()
        text.wait_for(state="visible")
        assert text.inner_text() == DEFINITIONS[name]
        page.mouse.move(0, 0)
    watched.open(service.url.rstrip("/") + "/timeline")
    tip = page.locator("[data-definition='critical_path']")
    tip.focus()  # the keyboard shows it too
    assert tip.locator(".tip-text").inner_text() == DEFINITIONS["critical_path"]
    assert tip.locator(".tip-text").is_visible()


def test_the_critical_path_shows_in_the_dark_theme(service: Service, watched: Watched) -> None:
    page = watched.page
    watched.open(service.url.rstrip("/") + "/timeline")
    page.evaluate("localStorage.setItem('vault-bmad-theme', 'dark')")
    watched.open(service.url.rstrip("/") + "/timeline")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    color = (
        "(document.querySelector(\"[data-chart='chart']\")._fullData || [])"
        ".find((t) => t.name === 'critical path')?.line.color"
    )
    page.wait_for_function(f"() => Boolean({color})")
    drawn = page.evaluate(color)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert contrast(drawn, background) >= 7  # an outline the eye finds at once
    page.evaluate("localStorage.setItem('vault-bmad-theme', 'auto')")


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two CSS colours given as #rrggbb or rgb(r, g, b)."""

    def luminance(css: str) -> float:
        if css.startswith("#"):
            channels = [int(css[i : i + 2], 16) for i in (1, 3, 5)]
        else:
            channels = [int(float(v)) for v in css[css.index("(") + 1 : -1].split(",")[:3]]
        linear = [
            c / 12.92 if c <= 10 else ((c + 14.025) / 269.025) ** 2.4
            for c in (value for value in channels)
        ]
        return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]

    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_running_now_lists_task_links(
    tmp_path: Path, context: BrowserContext, watched: Watched
) -> None:
    vault = tmp_path / "vault"
    (vault / "Agents").mkdir(parents=True)
    (vault / "Tasks").mkdir()
    (vault / "Agents" / "Solo.md").write_text(
        "---\ntype: agent\nruntime: llm\ncapacity: 2\n---\nThinks.\n"
    )
    for name in ("Long", "Longer"):
        (vault / "Tasks" / f"{name}.md").write_text(
            f"---\ntype: task\nagent: solo\ntimeout: 60\n---\n{name}.\n"
        )
    with LoopbackLLM(latency=lambda: 30.0) as llm:
        overrides = {"port": 0, "debounce_ms": 50, "llm_base_url": llm.base_url}
        isolated = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
        running = Service(vault, load_settings(vault, None, isolated, overrides=overrides))
        running.start()
        try:
            wait_until(lambda: running.snapshot().running == 2)
            page = watched.page
            watched.open(running.url)
            links = page.locator("#running-now a")
            links.first.wait_for()
            assert sorted(links.nth(n).get_attribute("href") or "" for n in range(2)) == [
                "/tasks/tasks/long",
                "/tasks/tasks/longer",
            ]
            assert page.locator("#running-now li").inner_text() == "solo: tasks/long, tasks/longer"
            assert "http" not in page.locator("main").inner_text()  # no raw URL anywhere
            watched.open(running.url.rstrip("/") + "/agents")
            cell = page.locator("#agents tr td").nth(6)
            assert cell.locator("a").count() == 2
            assert cell.inner_text() == "tasks/long, tasks/longer"
        finally:
            running.stop()


@pytest.fixture
def troubled(tmp_path: Path) -> Iterator[tuple[Service, list[bool]]]:
    """A service whose llm agent `sick` is out (its server answers 503), with a task cut
    off at its limit and a failed task that blocks another; `mended[0] = True` mends it."""
    vault = tmp_path / "Troubled"
    notes = {
        "Agents/Sick.md": "---\ntype: agent\nruntime: llm\n---\n",
        "Agents/Writer.md": "---\ntype: agent\nruntime: llm\ncapacity: 2\n---\n",
        "Tasks/Long.md": "---\ntype: task\nagent: writer\n---\nLONG answer\n",
        "Tasks/Bad.md": "---\ntype: task\nagent: writer\n---\nBAD request\n",
        "Tasks/After.md": "---\ntype: task\nagent: writer\ndepends_on: ['[[Bad]]']\n---\nx\n",
        **{
            f"Tasks/Sick {n}.md": f"---\ntype: task\nagent: sick\n---\nSICK {n}\n" for n in range(3)
        },
    }
    for rel_path, text in notes.items():
        (vault / rel_path).parent.mkdir(parents=True, exist_ok=True)
        (vault / rel_path).write_text(text)
    mended = [False]
    cut = recorded("llama_cpp/success_length")
    busy = recorded("llama_cpp/loading_model")
    bad = recorded("vllm/invalid_temperature")

    def answers(call: int, body: object) -> Answer | None:
        text = json.dumps(body)
        if "SICK" in text:
            return busy
        if "LONG" in text:
            return cut
        return bad if "BAD" in text and not mended[0] else None

    with LoopbackLLM(script=answers) as server:
        env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "VAULT_BMAD_LLM_BASE_URL": server.base_url}
        overrides = {"port": 0, "debounce_ms": 50, "health_cooldown_s": 600, "backoff_base_s": 0.05}
        running = Service(vault, load_settings(vault, None, env, overrides=overrides))
        running.start()
        try:
            wait_until(lambda: _settled(running, {"tasks/long", "tasks/bad", "tasks/after"}))
            wait_until(lambda: any(a.state == "out" for a in running.snapshot().agents))
            yield running, mended
        finally:
            running.stop()


def _settled(service: Service, task_ids: set[str]) -> bool:
    return all(t.status in SETTLED for t in service.snapshot().tasks if t.id in task_ids)


def test_the_dashboard_shows_who_is_out_what_was_cut_off_and_retries_the_failed(
    troubled: tuple[Service, list[bool]], watched: Watched
) -> None:
    service, mended = troubled
    page = watched.page
    watched.open(service.url.rstrip("/") + "/tasks")
    banner = page.locator("#attention")
    banner.wait_for(state="visible")
    text = banner.inner_text()
    assert "Agent sick is out, next try at" in text
    assert "answered HTTP 503: Loading model" in text
    assert (
        page.locator("#tasks tr", has_text="Long").locator(".badge.status-truncated").count() == 1
    )
    mended[0] = True
    page.locator("#retry button[value=failed]").click()
    page.wait_for_url("**retried=1")
    assert "1 task set back" in page.locator(".notice").inner_text()
    wait_until(lambda: _settled(service, {"tasks/bad", "tasks/after"}))
    statuses = {t.id: t.status for t in service.snapshot().tasks}
    assert (statuses["tasks/bad"], statuses["tasks/after"]) == ("done", "done")

    watched.open(service.url.rstrip("/") + "/agents")
    page.wait_for_function("() => document.querySelectorAll('#agents tr.out').length === 1")
    assert "health fell below" in page.locator("#agents tr.out").inner_text()

    watched.open(service.url.rstrip("/") + "/tasks/tasks/long")
    assert "cut off at its length limit" in page.locator(".notice.warn").inner_text()
    assert "prompt +" in page.locator("[data-field=usage]").inner_text()


def test_warnings_and_skipped_steps_say_what_they_are(service: Service, watched: Watched) -> None:
    page = watched.page
    watched.open(service.url.rstrip("/") + "/problems")
    page.wait_for_function("() => document.querySelectorAll('#problems tr').length === 1")
    row = page.locator("#problems tr")
    assert row.locator(".badge").inner_text() == "warning"
    assert "share the name 'Winston'" in row.inner_text()
    watched.open(service.url.rstrip("/") + "/tasks/tasks/kick-off-greenfield/review")
    assert page.locator("[data-field=status]").inner_text() == "skipped"
    why = page.locator("[data-field=error]").inner_text()
    assert why == "optional step: `include_optional: true` runs it"


def answer(note: Path, *answers: str) -> None:
    """Write `answers:` into the note's properties, as a user does in Obsidian."""
    text = note.read_text()
    lines = "".join(f"  - {json.dumps(a)}\n" for a in answers)
    head, rest = text.split("---\n", 2)[1], text.split("---\n", 2)[2]
    head = "".join(
        line for line in head.splitlines(True) if not line.startswith(("answers:", "  - "))
    )
    note.write_text(f"---\n{head}answers:\n{lines}---\n{rest}")


def test_the_overview_lists_who_waits_for_answers_until_the_note_answers(
    service: Service, watched: Watched
) -> None:
    page = watched.page
    task_id = "tasks/describe-the-first-user"
    note = service.vault / "Tasks" / "Describe the first user.md"
    watched.open(service.url)
    panel = page.locator("#waiting-panel")
    panel.wait_for(state="visible")
    item = panel.locator(f"li.waiting-task[data-task='{task_id}']")
    assert item.locator("ol li").all_inner_texts() == [
        "Who is the first user, and what do they do today?",
        "What would make this a success for them in three months?",
    ]
    assert "interviewer asks, since" in item.inner_text()
    assert str(item.locator("a", has_text="answer in Obsidian").get_attribute("href")).startswith(
        "obsidian://open?vault="
    )

    # The tasks page lists it first, saying what it asks; the API finds it by its status.
    watched.open(service.url.rstrip("/") + "/tasks")
    first = page.locator("#tasks tr").first
    assert first.locator(".badge").inner_text() == "needs-input"
    assert "asks: Who is the first user" in first.inner_text()
    found = service.snapshot().waiting()
    assert [t.id for t in found] == [task_id]

    # One answer of two: it keeps waiting, and the note says which is missing.
    answer(note, "A team lead at a small studio.")
    wait_until(lambda: "Still unanswered: 2." in note.read_text())
    watched.open(service.url)
    panel.wait_for(state="visible")
    assert service.snapshot().task(task_id).status == "needs-input"  # type: ignore[union-attr]

    answer(note, "A team lead at a small studio.", "Decisions found in one search.")
    page.wait_for_function("() => document.getElementById('waiting-panel').hidden")
    wait_until(lambda: "status: done" in note.read_text())
    persona = (service.vault / "Docs" / "First User.md").read_text()
    assert "A team lead at a small studio." in persona
    assert "Decisions found in one search." in persona
    assert "Questions answered" in note.read_text()
