"""The dashboard's JSON API and pages through Flask's test client, over a real running
service: a temporary vault, its real SQLite store, the engine running its tasks."""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import pytest
from flask.testing import FlaskClient

from tests.conftest import WriteNote
from tests.dashboard_history import cache_samples, history, record
from tests.waiting import wait_until
from vault_bmad.config import load_settings
from vault_bmad.metrics.analyze import analyze
from vault_bmad.runtimes.loopback_llm import LoopbackLLM
from vault_bmad.service import Service
from vault_bmad.web import csrf
from vault_bmad.web.app import create_app
from vault_bmad.web.assets import BUNDLES, CARTESIAN, FULL

HOSTILE = "<img src=x onerror=alert(1)>"
SETTLED = {"done", "failed", "blocked"}


def status_line(note: Path) -> str:
    lines = note.read_text().splitlines()
    return next((line for line in lines if line.startswith("status:")), "")  # not yet written


@pytest.fixture
def service(vault: Path, write: WriteNote) -> Iterator[Service]:
    write("Agents/Writer.md", "---\ntype: agent\ncapacity: 2\nexpertise: [writing]\n---\nWrites.\n")
    write("Agents/Reviewer.md", "---\ntype: agent\nexpertise: [review]\n---\nReviews.\n")
    write(
        "Workflows/Flow.md",
        """
        ---
        type: workflow
        steps:
          - id: draft
            agent: "[[Writer]]"
          - id: review
            agent: "[[Reviewer]]"
            requires: [draft]
        ---
        """,
    )
    write("Tasks/Start.md", '---\ntype: task\nworkflow: "[[Flow]]"\n---\nGo.\n')
    write("Tasks/Hello.md", "---\ntype: task\nagent: writer\noutput: Docs/Hello.md\n---\nHi.\n")
    write(f"Tasks/{HOSTILE}.md", "---\ntype: task\n---\nSay <script>alert(2)</script>.\n")
    write("Tasks/Bad.md", "---\ntype: task\npriority: soonish\n---\nbad\n")
    write("Reports/Report 2026-11-25 0400-0500.md", "---\ntype: report\nbottlenecks: 2\n---\nR\n")
    write("Reports/Scratch.md", "just a note\n")
    # The live result cache stays off, so the cache samples are only those a test records;
    # test_live_cache_counters runs one with it on.
    overrides = {"port": 0, "debounce_ms": 50, "cache_l1_size": 0}
    running = Service(vault, load_settings(vault, None, overrides=overrides))
    running.start()
    try:
        wait_until(
            lambda: (
                bool(running.snapshot().tasks)
                and all(t.status in SETTLED for t in running.snapshot().tasks)
            )
        )
        running.store.flush()  # the attempts the engine recorded are committed
        assert running.orchestrator is not None
        running.orchestrator.notes.flush()  # and the notes say what the engine says
        yield running
    finally:
        running.stop()


@pytest.fixture
def client(service: Service) -> FlaskClient:
    return create_app(service).test_client()


def token_of(client: FlaskClient) -> str:
    value: str = client.application.config[csrf.CONFIG_KEY]
    return value


def hostile_id(service: Service) -> str:
    return next(t.id for t in service.snapshot().tasks if t.title == HOSTILE)


def test_metrics_agree_with_the_analyzer(service: Service, client: FlaskClient) -> None:
    now = time.time()
    seeded = history(now, 300, ("writer", "reviewer"))
    record(service.store, seeded, cache_samples(now, 40))
    answer = client.get("/api/metrics?since=1h")
    asked = time.time()
    assert answer.status_code == 200
    body: dict[str, Any] = answer.get_json()
    period = body["range"]
    # the hour, widened to whole minutes; `now` may be in the minute before the request's
    assert period["bucket_s"] == 60 and now - 3660 <= period["since"] <= asked - 3600
    everything = service.store.attempts(since=period["since"])
    expected = analyze(
        everything,
        since=period["since"],
        until=period["until"],
        capacities={"writer": 2, "reviewer": 1},
    ).overall
    totals = body["totals"]
    assert totals["attempts"] == expected.attempts >= 300
    assert totals["done"] == expected.done
    assert totals["error_rate"] == pytest.approx(expected.error_rate)
    assert totals["throughput_per_min"] == pytest.approx(expected.throughput_per_min)
    assert totals["hit_rate"] == pytest.approx(expected.hit_rate)
    assert totals["utilization"] == pytest.approx(expected.utilization)
    assert totals["latency_s"] == expected.latency_s  # one histogram, one set of percentiles
    assert set(totals["latency_s"]) == {"p50", "p90", "p95", "p99"}
    assert body["now"]["tasks"] == service.snapshot().counts()
    assert body["now"]["pool_size"] == service.snapshot().pool_size
    assert [level["level"] for level in body["levels"]] == ["L1", "L2", "L3"]
    assert set(body["charts"]) == {"throughput", "latency", "cache_levels", "utilization", "pool"}
    for figure in body["charts"].values():
        go.Figure(figure)
    analysis = client.get("/api/analysis?since=1h").get_json()
    assert analysis["attempts"] == expected.attempts
    kinds = {b["kind"] for b in analysis["bottlenecks"]}
    assert [f["kind"] for f in analysis["findings"]] == list(
        dict.fromkeys(b["kind"] for b in analysis["bottlenecks"])
    )
    assert "small_cache" not in kinds  # the levels miss, but no ghost list says room helps


def test_bad_ranges_and_unknown_things_answer_json_errors(client: FlaskClient) -> None:
    answer = client.get("/api/metrics?since=yesterday")
    assert answer.status_code == 400
    assert "yesterday" in answer.get_json()["error"]
    assert client.get("/api/tasks/no/such/task").status_code == 404
    assert client.get("/api/graph?run=nope").status_code == 404
    assert client.get("/api/tasks?limit=lots").status_code == 400
    page = client.get("/tasks/no/such/task")
    assert page.status_code == 404 and b"There is no task" in page.data


def test_tasks_filter_search_and_page(service: Service, client: FlaskClient) -> None:
    everything = client.get("/api/tasks").get_json()
    assert everything["total"] == len(service.snapshot().tasks) == 5
    assert everything["counts"] == service.snapshot().counts()
    found = client.get("/api/tasks?q=hello").get_json()["tasks"]
    assert [t["id"] for t in found] == ["tasks/hello"]
    steps = client.get("/api/tasks?q=start+review").get_json()["tasks"]
    assert [t["step"] for t in steps] == ["review"]
    by_agent = client.get("/api/tasks?agent=reviewer").get_json()["tasks"]
    assert by_agent and all(t["agent"] == "reviewer" for t in by_agent)
    assert client.get("/api/tasks?status=failed").get_json()["tasks"] == []
    pages = [client.get(f"/api/tasks?limit=2&offset={n}").get_json() for n in (0, 2, 4)]
    ids = [t["id"] for page in pages for t in page["tasks"]]
    assert ids == [t["id"] for t in everything["tasks"]]


def test_a_task_answers_with_its_history_and_links(service: Service, client: FlaskClient) -> None:
    body = client.get("/api/tasks/tasks/hello").get_json()
    assert body["task"]["status"] == "done"
    [attempt] = body["attempts"]
    assert attempt["agent"] == "writer" and attempt["duration_ms"] >= 0
    assert body["stored"]["output"] == "Docs/Hello.md"
    assert body["obsidian"] == "obsidian://open?vault=vault&file=Tasks%2FHello"
    assert body["output_obsidian"] == "obsidian://open?vault=vault&file=Docs%2FHello"
    page = client.get("/tasks/tasks/hello")
    assert page.status_code == 200
    assert b'href="/notes/Docs/Hello.md"' in page.data
    assert b"obsidian://open?vault=vault&amp;file=Tasks%2FHello" in page.data
    note = client.get("/notes/Docs/Hello.md")
    assert note.status_code == 200 and b"source_task" in note.data


def test_rerun_needs_the_csrf_token_and_sets_todo(
    service: Service, client: FlaskClient, vault: Path
) -> None:
    note = vault / "Tasks/Hello.md"
    assert status_line(note) == "status: done"
    assert client.post("/api/tasks/tasks/hello/rerun").status_code == 403
    assert client.post("/tasks/tasks/hello/rerun", data={"csrf_token": "guess"}).status_code == 403
    assert status_line(note) == "status: done"
    answer = client.post("/tasks/tasks/hello/rerun", data={"csrf_token": token_of(client)})
    assert answer.status_code == 303
    assert answer.headers["Location"].endswith("/tasks/tasks/hello?rerun=requested")
    wait_until(lambda: len(client.get("/api/tasks/tasks/hello").get_json()["attempts"]) == 2)
    wait_until(lambda: status_line(note) == "status: done")
    again = client.post("/api/tasks/tasks/hello/rerun", headers={csrf.HEADER: token_of(client)})
    assert again.status_code == 200 and again.get_json() == {"rerun": "tasks/hello"}
    assert (
        client.post("/api/tasks/nope/rerun", headers={csrf.HEADER: token_of(client)}).status_code
        == 404
    )


def test_rerun_is_refused_while_the_task_runs(vault: Path, write: WriteNote) -> None:
    write("Agents/Slow.md", "---\ntype: agent\nruntime: llm\n---\nThinks.\n")
    note = write("Tasks/Long.md", "---\ntype: task\nagent: slow\ntimeout: 60\n---\nThink.\n")
    with LoopbackLLM(latency=lambda: 30.0) as llm:
        overrides = {"port": 0, "llm_base_url": llm.base_url}
        running = Service(vault, load_settings(vault, None, overrides=overrides))
        running.start()
        try:
            wait_until(lambda: status_line(note) == "status: running")
            client = create_app(running).test_client()
            answer = client.post(
                "/api/tasks/tasks/long/rerun", headers={csrf.HEADER: token_of(client)}
            )
            assert answer.status_code == 409
            assert "queued or running" in answer.get_json()["error"]
            assert status_line(note) == "status: running"
        finally:
            running.stop()
    assert status_line(note) == "status: todo"  # stopped before it ended: back to todo


def test_agents_carry_live_state_and_range_figures(service: Service, client: FlaskClient) -> None:
    now = time.time()
    seeded = history(now, 120, ("writer",))
    record(service.store, seeded, [])
    body = client.get("/api/agents?since=1h").get_json()
    agents = {a["id"]: a for a in body["agents"]}
    assert set(agents) == {"writer", "reviewer"}
    writer = agents["writer"]
    assert writer["capacity"] == 2 and writer["state"] == "in_service"
    recorded = service.store.attempts(since=body["range"]["since"])
    agent_work = [a for a in recorded if a.runtime != "workflow"]  # not a run's bookkeeping
    assert writer["period"]["attempts"] == sum(1 for a in agent_work if a.agent == "writer")
    assert 0 < writer["period"]["utilization"] < 1
    for figure in body["charts"].values():
        go.Figure(figure)


def test_cache_view_reads_levels_and_served_counts(service: Service, client: FlaskClient) -> None:
    now = time.time()
    samples = cache_samples(now, 20)
    record(service.store, history(now, 60, ("writer",)), samples)
    body = client.get("/api/cache?since=1h").get_json()
    levels = {level["level"]: level for level in body["levels"]}
    l1 = [s for s in samples if s.level == "L1"]
    assert levels["L1"]["hits"] == l1[-1].hits  # counted from zero: no sample came before
    assert levels["L1"]["size"] == l1[-1].size
    recorded = service.store.attempts(since=body["range"]["since"])
    assert sum(body["served"].values()) == sum(1 for a in recorded if a.runtime != "workflow")
    assert body["live"] is None and body["prefetch_precision"] is None
    for figure in body["charts"].values():
        go.Figure(figure)


def test_live_cache_counters(vault: Path, write: WriteNote) -> None:
    write("Agents/Writer.md", "---\ntype: agent\n---\nWrites.\n")
    for number in range(3):  # the same request three times: computed once, then cached
        write(f"Tasks/Same {number}.md", "---\ntype: task\nagent: writer\n---\nSame.\n")
    running = Service(vault, load_settings(vault, None, overrides={"port": 0}))
    running.start()
    try:
        wait_until(lambda: running.snapshot().counts() == {"done": 3})
        live = running.cache_stats()
        assert live is not None
        body = create_app(running).test_client().get("/api/cache").get_json()
        assert live.hit_rate > 0
        assert body["live"]["hit_rate"] == pytest.approx(live.hit_rate)
        levels = body["live"]["levels"]
        assert sum(level["hits"] for level in levels.values()) == 2
        prefetch = live.prefetch
        expected = prefetch.precision if prefetch is not None and prefetch.issued else None
        assert body["prefetch_precision"] == expected
    finally:
        running.stop()


def test_problems_and_reports(service: Service, client: FlaskClient) -> None:
    [problem] = client.get("/api/problems").get_json()["problems"]
    assert problem["path"] == "Tasks/Bad.md" and "soonish" in problem["message"]
    [report] = client.get("/api/reports").get_json()["reports"]
    assert report["path"] == "Reports/Report 2026-11-25 0400-0500.md"
    assert report["bottlenecks"] == 2
    assert report["obsidian"] == (
        "obsidian://open?vault=vault&file=Reports%2FReport%202026-11-25%200400-0500"
    )


def test_timeline_and_graph_of_a_workflow_run(service: Service, client: FlaskClient) -> None:
    everything = client.get("/api/timeline?since=1h")
    body = everything.get_json()
    assert body["shown"] == body["total"] == 4  # hello, the hostile task and two steps
    assert body["runs"][0]["id"] == "tasks/start"
    assert body["critical_path"] == ["tasks/start/draft", "tasks/start/review"]
    go.Figure(body["chart"])
    # "1h" slides by the minute, so its answer (and ETag) may change between two requests:
    # the same moment twice gives one answer, the next minute another.
    moment = time.time()
    frozen = create_app(service, wall=lambda: moment).test_client()
    etag = frozen.get("/api/timeline?since=1h").headers["ETag"]
    assert frozen.get("/api/timeline?since=1h", headers={"If-None-Match": etag}).status_code == 304
    later = create_app(service, wall=lambda: moment + 60).test_client()
    assert later.get("/api/timeline?since=1h", headers={"If-None-Match": etag}).status_code == 200
    assert body["chart"]["layout"]["xaxis"]["tickformat"] == "%H:%M:%S.%L"  # ms: under 10 s
    run = client.get("/api/timeline?since=1h&run=tasks/start").get_json()
    assert run["shown"] == 2 and run["run"] == "tasks/start"
    graph = client.get("/api/graph").get_json()
    assert graph["run"] == "tasks/start"
    assert [(n["label"], n["status"]) for n in graph["nodes"]] == [
        ("draft", "done"),
        ("review", "done"),
    ]
    assert graph["edges"] == [["tasks/start/draft", "tasks/start/review"]]
    assert graph["critical_path"] == ["tasks/start/draft", "tasks/start/review"]
    go.Figure(graph["chart"])


def test_pages_escape_note_text_and_send_a_strict_policy(
    service: Service, client: FlaskClient
) -> None:
    task_id = hostile_id(service)
    page = client.get(f"/tasks/{task_id}")
    assert page.status_code == 200
    html = page.data.decode()
    assert HOSTILE not in html and "<script>alert(2)" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-eval" not in policy
    api = client.get("/api/tasks").data.decode()
    assert HOSTILE not in api  # `<` and `>` are escaped in JSON too


def test_every_page_loads_with_only_local_scripts(client: FlaskClient) -> None:
    for path in (
        "/",
        "/timeline",
        "/graph",
        "/agents",
        "/tasks",
        "/cache",
        "/problems",
        "/reports",
    ):
        page = client.get(path + "?range=24h")
        assert page.status_code == 200, path
        html = page.data.decode()
        assert 'name="csrf-token"' in html
        assert "://" not in html.split("<body")[0]  # no CDN, no remote asset
    for name, bundle in BUNDLES.items():
        with client.get(f"/assets/{name}") as script:
            assert script.status_code == 200
            assert script.data == bundle.path.read_bytes()
    assert client.get("/assets/plotly-basic.min.js").status_code == 404
    assert client.get("/notes/../outside.md").status_code == 404
    assert client.get("/notes/.vault-bmad/state.db").status_code == 404


def test_hosts_and_tokens(service: Service) -> None:
    open_app = create_app(service).test_client()
    assert open_app.get("/api/health", headers={"Host": "evil.example"}).status_code == 400
    assert open_app.get("/api/health", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    locked = create_app(service, "s3cret").test_client()
    assert locked.get("/").status_code == 401
    assert locked.get("/api/tasks").status_code == 401
    assert locked.get("/?token=s3cret").status_code == 200
    assert locked.get("/tasks").status_code == 200  # the cookie carries it on
    bearer = {"Authorization": "Bearer s3cret", "Host": "dashboard.lan"}
    assert (
        create_app(service, "s3cret").test_client().get("/api/tasks", headers=bearer).status_code
        == 200
    )


def test_bundle_and_json_go_out_compressed_and_cached(client: FlaskClient) -> None:
    browser = {"Accept-Encoding": "gzip, deflate, br, zstd"}
    head = client.get("/").data.decode().split("<body")[0]
    script = next(line for line in head.splitlines() if 'id="plotly"' in line)
    urls = {name: f"/assets/{name}?v={bundle.version}" for name, bundle in BUNDLES.items()}
    assert f'src="{urls[CARTESIAN]}"' in script and f'data-full="{urls[FULL]}"' in script
    assert FULL not in head.replace(f'data-full="{urls[FULL]}"', "")  # loaded only for WebGL
    for name, url in urls.items():
        bundle = client.get(url, headers=browser)
        assert bundle.headers["Content-Encoding"] == "gzip"
        assert "Accept-Encoding" in bundle.headers["Vary"]
        assert int(bundle.headers["Content-Length"]) < BUNDLES[name].path.stat().st_size / 3
        assert gzip.decompress(bundle.data) == BUNDLES[name].path.read_bytes()
        assert "immutable" in bundle.headers["Cache-Control"]
        assert "max-age=31536000" in bundle.headers["Cache-Control"]
        again = client.get(url, headers={**browser, "If-None-Match": bundle.headers["ETag"]})
        assert again.status_code == 304
        plain = client.get(url)
        assert "Content-Encoding" not in plain.headers
        assert plain.headers["ETag"] != bundle.headers["ETag"]  # one per representation
    unversioned = client.get(f"/assets/{CARTESIAN}?v=old", headers=browser)
    assert "immutable" not in unversioned.headers["Cache-Control"]
    answer = client.get("/api/tasks", headers={"Accept-Encoding": "gzip"})
    assert answer.headers["Content-Encoding"] == "gzip"
    unchanged = client.get("/api/tasks", headers={"If-None-Match": answer.headers["ETag"]})
    assert unchanged.status_code in (200, 304)  # the gzip ETag names the encoding
    plain = client.get("/api/tasks")
    assert "Content-Encoding" not in plain.headers
    assert (
        client.get("/api/tasks", headers={"If-None-Match": plain.headers["ETag"]}).status_code
        == 304
    )


def test_seven_days_and_custom_ranges(service: Service, client: FlaskClient) -> None:
    now = time.time()
    record(service.store, history(now, 200, ("writer",), span_s=6 * 86_400), [])
    week = client.get("/api/metrics?since=7d").get_json()
    assert week["range"]["name"] == "7d" and week["totals"]["attempts"] >= 200
    start, end = now - 3 * 86_400, now - 86_400
    custom = client.get(f"/api/metrics?since=custom&from={start}&to={end}").get_json()
    assert custom["range"]["name"] == "custom"
    assert custom["range"]["since"] <= start and custom["range"]["until"] == end
    inside = [a for a in service.store.attempts(limit=100_000) if start <= a.ended_at < end]
    assert abs(custom["totals"]["attempts"] - len(inside)) <= 2  # the range starts on a bucket
    assert client.get(f"/api/metrics?since=custom&from={end}&to={start}").status_code == 400
    assert client.get("/api/metrics?since=custom&from=soon&to=later").status_code == 400
    page = client.get(f"/?range=custom&from={start}&to={end}").data.decode()
    assert 'data-range="custom"' in page and f'data-from="{start}"' in page


def test_tasks_sort_and_search_their_errors(
    service: Service, client: FlaskClient, write: WriteNote
) -> None:
    write("Templates/Divide.md", "---\ntype: template\n---\n{{ 1 / 0 }}\n")
    wait_until(lambda: service.index.get("Templates/Divide.md") is not None)
    write("Tasks/Broken.md", '---\ntype: task\nagent: writer\ntemplate: "[[Divide]]"\n---\nGo.\n')
    wait_until(lambda: (t := service.snapshot().task("tasks/broken")) is not None and bool(t.error))
    by_attempts = client.get("/api/tasks?sort=-attempts").get_json()["tasks"]
    counts = [t["attempts"] for t in by_attempts]
    assert counts == sorted(counts, reverse=True)
    titles = [
        t["title"].casefold() for t in client.get("/api/tasks?sort=title").get_json()["tasks"]
    ]
    assert titles == sorted(titles)
    timed = client.get("/api/tasks?sort=duration").get_json()["tasks"]
    seconds = [t["seconds"] for t in timed if t["seconds"] is not None]
    assert seconds == sorted(seconds) and len(seconds) >= 3
    assert client.get("/api/tasks?sort=mood").status_code == 400
    broken = service.snapshot().task("tasks/broken")
    assert broken is not None and broken.error
    found = client.get("/api/tasks?q=division").get_json()["tasks"]
    assert [t["id"] for t in found] == ["tasks/broken"], broken.error


def test_a_report_note_reads_as_markdown(
    service: Service, client: FlaskClient, vault: Path
) -> None:
    (vault / "Reports" / "Rendered.md").write_text(
        "---\ntype: report\n---\n# Report\n\n| agent | busy |\n|---|---|\n"
        "| [[Agents/Writer]] | 50% |\n\n> [!warning] Tasks waited\n> - writer was out\n\n"
        "<script>alert(3)</script>\n",
        encoding="utf-8",
    )
    page = client.get("/notes/Reports/Rendered.md").data.decode()
    article = page.split('<article class="markdown">', 1)[1].split("</article>", 1)[0]
    assert "<table>" in article and "<h1>Report</h1>" in article
    assert '<a href="/notes/Agents/Writer.md" class="wikilink">Agents/Writer</a>' in article
    assert '<blockquote class="callout warning">' in article
    assert "<script>" not in article and "&lt;script&gt;alert(3)&lt;/script&gt;" in article
