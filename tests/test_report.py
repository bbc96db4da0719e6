"""Report notes: periods and names, the Markdown, rewriting, and `vault-bmad report`."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from tests.conftest import WriteNote
from tests.engine_clock import FakeClock
from vault_bmad.cli import main
from vault_bmad.config import Settings
from vault_bmad.metrics.analyze import Analysis, analyze
from vault_bmad.metrics.figures import DEFINITIONS
from vault_bmad.metrics.gantt import chosen_bars, gantt_block, mermaid_text
from vault_bmad.metrics.records import Attempt, CacheSample, TaskState
from vault_bmad.metrics.report import (
    NoteLinks,
    Period,
    ReportSchedule,
    interval_period,
    parse_span,
    span_period,
    write_report,
)
from vault_bmad.metrics.report_markdown import report_markdown
from vault_bmad.metrics.store import Store
from vault_bmad.model.validate import Definitions, build_definitions
from vault_bmad.reports import write_vault_report
from vault_bmad.vault.index import VaultIndex
from vault_bmad.vault.writer import NoteWriter

LINK = re.compile(r"\[\[([^\]|#]+)")


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert leaked == []


def local(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> float:
    """Epoch seconds of a local wall-clock time."""
    return datetime(year, month, day, hour, minute, second).timestamp()


def attempt(
    task: str, agent: str, start: float, end: float, status: str = "done", cache: str = "miss"
) -> Attempt:
    return Attempt(task, agent, "template", 1, status, start, start, end, None, cache)


@pytest.fixture
def team(vault: Path, write: WriteNote) -> Path:
    """Two agents and three tasks, one a workflow-free chain, plus a task with a tricky name."""
    write("Agents/Architect.md", "---\ntype: agent\nid: architect\nname: Winston\n---\n")
    write("Agents/Developer.md", "---\ntype: agent\nid: dev\nname: James\nexpertise: [code]\n---\n")
    write("Tasks/Plan.md", "---\ntype: task\nid: plan\nagent: architect\n---\nPlan it.\n")
    write(
        "Tasks/Design; API at 100%.md",
        "---\ntype: task\nid: design-api-1\nagent: architect\n"
        'depends_on: ["[[Plan]]"]\n---\nDesign it.\n',
    )
    write(
        "Tasks/Build.md",
        "---\ntype: task\nid: build\nagent: dev\n"
        'depends_on: ["[[Design; API at 100%]]"]\n---\nBuild it.\n',
    )
    return vault


def team_analysis(start: float, until: float) -> Analysis:
    """The architect dominates the critical path; L1 is too small: 8 of its misses were of
    results it had dropped for room."""
    runs = [
        attempt("plan", "architect", start + 10, start + 12),
        attempt("design-api-1", "architect", start + 12, start + 15, cache="L1"),
        attempt("build", "dev", start + 15, start + 15.5, "failed"),
    ]
    samples = [
        CacheSample("L1", 0, 0, 0, 0, 0, at=start + 1),
        CacheSample("L1", 10, 30, 0, 0, 5, at=start + 20, ghost_hits=8),
    ]
    return analyze(
        runs,
        since=start,
        until=until,
        capacities={"architect": 1, "dev": 1},
        cache_samples=samples,
        dependencies={"design-api-1": ["plan"], "build": ["design-api-1"]},
    )


def test_span_parsing() -> None:
    assert parse_span("90m") == 5400
    assert parse_span(" 24H ") == 86_400
    assert parse_span("7d") == 7 * 86_400
    assert parse_span("1.5h") == 5400
    assert parse_span("all") is None
    for bad in ("", "24", "h", "0h", "-1h", "soon"):
        with pytest.raises(ValueError, match="span of time"):
            parse_span(bad)


def test_report_notes_are_named_by_their_period() -> None:
    hour = interval_period(local(2026, 11, 25, 4, 30), 3600)
    assert (hour.start, hour.end) == (local(2026, 11, 25, 4), local(2026, 11, 25, 5))
    assert hour.note_path == "Reports/Report 2026-11-25 0400-0500.md"
    last = interval_period(local(2026, 11, 25, 23, 59, 59), 3600)
    assert last.note_path == "Reports/Report 2026-11-25 2300-2400.md"
    seven = interval_period(local(2026, 11, 25, 22), 7 * 3600)  # the day's last is cut short
    assert seven.note_path == "Reports/Report 2026-11-25 2100-2400.md"
    quarter = interval_period(local(2026, 11, 25, 4, 44, 59), 900)
    assert quarter.note_path == "Reports/Report 2026-11-25 0430-0445.md"
    odd = interval_period(local(2026, 11, 25, 4, 0, 50), 45)
    assert odd.note_path == "Reports/Report 2026-11-25 040045-040130.md"
    day = span_period(local(2026, 11, 25, 5, 23, 10), 86_400)
    assert day.note_path == "Reports/Report 2026-11-24 0523 - 2026-11-25 0524.md"


def test_span_period_covers_the_whole_span_in_whole_minutes() -> None:
    now = local(2026, 11, 25, 5, 23, 10)
    period = span_period(now, 3600)
    assert period.start <= now - 3600 and period.end >= now
    assert period.start % 60 == 0 and period.end % 60 == 0
    assert span_period(now + 20, 3600) == period  # the same minute: the same note
    assert span_period(now, None, earliest=now - 7200.5).start == local(2026, 11, 25, 3, 23)


def test_schedule_reports_each_interval_once_it_ends() -> None:
    clock = FakeClock(local(2026, 11, 25, 4, 10))
    schedule = ReportSchedule(3600, clock)
    assert schedule.due() is None
    clock.now = local(2026, 11, 25, 5, 0, 1)
    ended = schedule.due()
    assert ended is not None and ended.note_path == "Reports/Report 2026-11-25 0400-0500.md"
    assert schedule.due() is None
    clock.now = local(2026, 11, 25, 5, 23)
    assert schedule.at_shutdown().note_path == "Reports/Report 2026-11-25 0500-0600.md"


def test_mermaid_text_cannot_break_the_chart() -> None:
    assert mermaid_text("Design: API; #1 at 50%") == "Design： API； ＃1 at 50％"
    assert mermaid_text("line\nbreak ```fence") == "line break '''fence"
    assert mermaid_text("section two") == "“section two”"
    assert mermaid_text("Title page") == "“Title page”"
    assert mermaid_text("2026-11-25 plan") == "“2026-11-25 plan”"
    assert mermaid_text("Sections") == "Sections"
    assert mermaid_text("  ") == "(untitled)"


def test_gantt_caps_the_bars_at_the_longest() -> None:
    tasks = analyze(
        [attempt(f"t{n:02}", "a", n * 100, n * 100 + n + 1) for n in range(60)],
        since=0,
        until=10_000,
        capacities={},
    ).tasks
    bars = chosen_bars(tasks, 50)
    assert [b.task_id for b in bars] == [f"t{n:02}" for n in range(10, 60)]
    lines = gantt_block(bars, title="T", bar_name=str.upper, section_name=lambda a: f"agent {a}")
    assert lines[:2] == ["```mermaid", "gantt"] and lines[-1] == "```"
    assert sum(1 for line in lines if ":done, t" in line) == 50
    assert "    section agent a" in lines


def test_report_markdown_has_tables_callouts_gantt_and_links(team: Path) -> None:
    start = local(2026, 11, 25, 4)
    analysis = team_analysis(start, start + 3600)
    definitions = build_definitions(VaultIndex.load(team))
    assert set(definitions.tasks) == {"plan", "design-api-1", "build"}
    text = report_markdown(analysis, start, start + 3600, NoteLinks.of(definitions))
    assert text.startswith("# Performance report 2026-11-25 04:00–05:00\n")
    headings = [line for line in text.splitlines() if line.startswith("#")]
    assert headings[1:] == [
        "## Findings",
        "## Figures",
        "## Details",
        "### Agents",
        "### Cache by level",
        "### Critical path",
        "### Evidence",
        "### Timeline",
    ]  # summary first, findings next, details below
    assert {b.kind for b in analysis.bottlenecks} == {"critical_path", "small_cache"}
    assert "> [!warning] One agent holds up the critical path: [[Agents/Architect]]" in text
    assert "> [!warning] Cache levels too small for the work: `L1`" in text
    assert "> **Advice, split the task ([[Tasks/Design; API at 100%]]):**" in text
    assert "> **Advice, enlarge the level (`L1`):** Raise cache_l1_size by half" in text
    assert "| L1 | 40 | 10 | 30 | 25% | 8 | samples |" in text
    for name, words in DEFINITIONS.items():  # each figure defined in one line
        assert f"| {name.replace('_', ' ')} | " in text and f" | {words} |" in text
    findings = text.split("## Findings", 1)[1].split("## Figures", 1)[0]
    assert len(findings.strip().splitlines()) <= 30  # at most a screen
    gantt = text.split("```mermaid\n", 1)[1].split("```", 1)[0]
    assert gantt.startswith("gantt\n")
    assert (
        "    Design； API at 100％ :done, t2, 2026-11-25 04:00:12.000, 2026-11-25 04:00:15.000"
        in gantt
    )
    assert "    Build :crit, t3," in gantt
    assert "    axisFormat %H:%M:%S.%L" in gantt  # 5.5 s of bars: milliseconds count
    assert "section Winston" in gantt and "section James" in gantt
    linked = set(LINK.findall(text))
    notes = {agent.path for agent in definitions.agents.values()}
    notes |= {task.path for task in definitions.tasks.values()}
    assert {f"{path[:-3]}" for path in notes} <= linked  # every agent and task it names


def test_unknown_agents_and_tasks_are_named_not_linked() -> None:
    start = local(2026, 11, 25, 4)
    analysis = analyze(
        [attempt("ghost-task", "ghost", start, start + 1)],
        since=start,
        until=start + 60,
        capacities={},
    )
    stored = [TaskState("ghost-task", "Tasks/Gone.md", "done")]
    text = report_markdown(analysis, start, start + 60, NoteLinks.of(Definitions(), stored))
    assert "`ghost`" in text and "[[ghost" not in text
    assert "[[Tasks/Gone]]" in text  # a task no longer defined, linked by its stored path
    assert "> [!success] Nothing to change" in text


def test_a_period_s_report_is_rewritten_not_duplicated(team: Path) -> None:
    start = local(2026, 11, 25, 4)
    period = Period(start, start + 3600)
    links = NoteLinks.of(build_definitions(VaultIndex.load(team)))
    writer = NoteWriter(team)
    first = write_report(writer, team_analysis(start, start + 1800), period, links)
    second = write_report(writer, team_analysis(start, start + 3600), period, links)
    assert first == second == "Reports/Report 2026-11-25 0400-0500.md"
    assert [p.name for p in (team / "Reports").iterdir()] == ["Report 2026-11-25 0400-0500.md"]
    text = (team / second).read_text(encoding="utf-8")
    front = yaml.safe_load(text.split("---\n")[1])
    assert front["type"] == "report"
    assert "vault-bmad/report" in front["tags"]
    assert datetime.fromisoformat(front["period_start"]).timestamp() == start
    assert datetime.fromisoformat(front["period_end"]).timestamp() == start + 3600
    assert datetime.fromisoformat(front["data_until"]).timestamp() == start + 3600
    # 2 done in the 5.5 s the vault had work, whether the period is half an hour or one
    assert "| throughput | 21.82 tasks/min over 5.50 s of work |" in text


def test_a_report_the_user_edited_is_kept(team: Path) -> None:
    start = local(2026, 11, 25, 4)
    period = Period(start, start + 3600)
    links = NoteLinks.of(build_definitions(VaultIndex.load(team)))
    writer = NoteWriter(team)
    path = team / write_report(writer, team_analysis(start, start + 3600), period, links)
    path.write_text(path.read_text(encoding="utf-8") + "\nMy notes.\n", encoding="utf-8")
    again = write_report(NoteWriter(team), team_analysis(start, start + 3600), period, links)
    assert again == "Reports/Report 2026-11-25 0400-0500 (2).md"
    assert path.read_text(encoding="utf-8").endswith("My notes.\n")


def record_team_run(vault: Path, now: float) -> None:
    with Store(vault / ".vault-bmad" / "state.db") as store:
        store.record_attempts(
            [
                attempt("plan", "architect", now - 600, now - 598),
                attempt("design-api-1", "architect", now - 598, now - 595),
                attempt("build", "dev", now - 590, now - 589, cache="L1"),
                attempt("old", "dev", now - 90_000, now - 89_999),  # a day ago
            ]
        )
        store.record_cache_sample(CacheSample("L1", 0, 0, 0, 0, 0, at=now - 700))
        store.record_cache_sample(CacheSample("L1", 1, 2, 0, 0, 1, at=now - 500))
        store.save_task(TaskState("old", "Tasks/Old.md", "done"))


def test_vault_report_from_a_real_store_rewrites_its_note(team: Path) -> None:
    clock = FakeClock(local(2026, 11, 25, 5, 23, 10))
    record_team_run(team, clock.now)
    first = write_vault_report(team, Settings(), 3600, clock=clock)
    clock.advance(30)  # the same minute: the same period
    second = write_vault_report(team, Settings(), 3600, clock=clock)
    assert first.path == second.path == "Reports/Report 2026-11-25 0423-0524.md"
    assert len(list((team / "Reports").iterdir())) == 1
    o = second.analysis.overall
    assert (o.attempts, o.done, o.until) == (3, 3, clock.now)
    assert [(lv.level, lv.hits, lv.misses) for lv in second.analysis.levels] == [("L1", 1, 2)]
    assert second.analysis.critical_path == ("plan", "design-api-1", "build")
    everything = write_vault_report(team, Settings(), None, clock=clock)
    assert everything.analysis.overall.attempts == 4
    assert "[[Tasks/Old]]" in (team / everything.path).read_text(encoding="utf-8")


def test_report_command_prints_the_note_path(team: Path) -> None:
    record_team_run(team, time.time())
    result = CliRunner().invoke(main, ["report", str(team), "--since", "2h"])
    assert result.exit_code == 0, result.output
    path = result.output.strip()
    assert path.startswith("Reports/Report ") and (team / path).is_file()
    as_json = CliRunner().invoke(main, ["report", str(team), "--since", "all", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert (team / data["report"]).is_file()
    assert data["overall"]["attempts"] == 4
    assert {a["agent"] for a in data["agents"]} == {"architect", "dev"}
    assert {b["kind"] for b in data["bottlenecks"]} == {"critical_path"}


def test_report_command_finds_a_state_folder_the_config_moved(team: Path, tmp_path: Path) -> None:
    config = tmp_path / "moved.toml"
    config.write_text('state_dir = "Runs state"\n')
    ran = CliRunner().invoke(main, ["run", str(team), "--config", str(config)])
    assert ran.exit_code == 0, ran.output
    assert (team / "Runs state" / "state.db").is_file()
    assert not (team / ".vault-bmad").exists()
    result = CliRunner().invoke(
        main, ["report", str(team), "--config", str(config), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (team / data["report"]).is_file()
    assert data["overall"]["attempts"] == 3
    unmoved = CliRunner().invoke(main, ["report", str(team)])
    assert unmoved.exit_code == 2
    assert "no metrics yet" in unmoved.output


def test_report_command_errors(team: Path) -> None:
    missing = CliRunner().invoke(main, ["report", str(team)])
    assert missing.exit_code == 2
    assert "no metrics yet" in missing.output
    assert not (team / ".vault-bmad" / "state.db").exists()
    bad = CliRunner().invoke(main, ["report", str(team), "--since", "yesterday"])
    assert bad.exit_code == 2
    assert "'yesterday' is not a span of time" in bad.output


def test_error_text_in_evidence_is_inert_code() -> None:
    start = local(2026, 11, 25, 4)
    good = [attempt(f"t{n}", "a", start + n, start + n + 1) for n in range(10)]
    bad = [
        Attempt(
            f"u{n}",
            "a",
            "llm",
            1,
            "failed",
            start + 40 + n,
            start + 40 + n,
            start + 41 + n,
            "boom [[Secret]]\n#tag `x`",
            "miss",
        )
        for n in range(10)
    ]
    analysis = analyze(good + bad, since=start, until=start + 60, capacities={"a": 10})
    assert [b.kind for b in analysis.bottlenecks] == ["rising_errors"]
    text = report_markdown(analysis, start, start + 60, NoteLinks())
    evidence = text.split("### Evidence", 1)[1].split("###", 1)[0]
    assert "last error: `boom [[Secret]] #tag 'x'`" in evidence
    assert "second half error rate: 100.0%" in evidence
    assert "[[Secret]]" not in text.replace("`boom [[Secret]] #tag 'x'`", "")
