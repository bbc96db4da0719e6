"""The dashboard's HTML pages. Each is a frame that static/dashboard.js fills from the API
and keeps current; the task and note pages are drawn here, note text escaped by Jinja.

Plotly's JavaScript is served from the package (assets.py), so the dashboard works with no
internet connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from vault_bmad.metrics.figures import DEFINITIONS
from vault_bmad.metrics.records import Attempt
from vault_bmad.metrics.usage import NONE, cost_text, usage
from vault_bmad.model.status import IN_PROGRESS
from vault_bmad.vault.notes import parse_note
from vault_bmad.web.markdown import render_markdown
from vault_bmad.web.ranges import CHOICES, CUSTOM, DEFAULT_RANGE
from vault_bmad.web.state import dashboard
from vault_bmad.web.vault_files import note_path, obsidian_url, read_note

pages = Blueprint("pages", __name__)

TASK_HISTORY = 1_000
POLL_MS = 2_000
RETRIED = ("failed", "blocked")  # what the tasks page's retry buttons set back to todo


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: str


NAVIGATION: tuple[NavItem, ...] = (
    NavItem("pages.overview", "Overview"),
    NavItem("pages.timeline", "Timeline"),
    NavItem("pages.graph", "Workflow graph"),
    NavItem("pages.agents", "Agents"),
    NavItem("pages.tasks", "Tasks"),
    NavItem("pages.cache", "Cache"),
    NavItem("pages.problems", "Problems"),
    NavItem("pages.reports", "Reports"),
)


def _page(
    template: str, page: str, *, view: str | None = None, ranged: bool = True, **context: Any
) -> str:
    """Render a page; `page` marks its place in the navigation, `view` (default: the same)
    names what dashboard.js does on it."""
    backend = dashboard().backend
    wanted = request.args.get("range", DEFAULT_RANGE)
    known = wanted in dict(CHOICES) or wanted == CUSTOM
    return render_template(
        template,
        page=page,
        view=view or page,
        navigation=NAVIGATION,
        ranges=CHOICES,
        range=wanted if known else DEFAULT_RANGE,
        range_from=request.args.get("from", ""),
        range_to=request.args.get("to", ""),
        ranged=ranged,
        definitions=DEFINITIONS,
        vault_name=backend.vault.name,
        poll_ms=POLL_MS,
        problems=len(backend.snapshot().problems),
        **context,
    )


@pages.get("/")
def overview() -> str:
    return _page("overview.html", "overview")


@pages.get("/timeline")
def timeline() -> str:
    return _page("timeline.html", "timeline", run=request.args.get("run", ""))


@pages.get("/graph")
def graph() -> str:
    return _page("graph.html", "graph", ranged=False, run=request.args.get("run", ""))


@pages.get("/agents")
def agents() -> str:
    return _page("agents.html", "agents")


@pages.get("/tasks")
def tasks() -> str:
    statuses = sorted(dashboard().backend.snapshot().counts())
    retried = request.args.get("retried", type=int)
    return _page("tasks.html", "tasks", ranged=False, statuses=statuses, retried=retried)


@pages.post("/tasks/retry")
def retry() -> BaseResponse:
    """The tasks page's buttons: every failed (or blocked) task back to `status: todo`."""
    wanted = request.form.get("status", "")
    if wanted not in RETRIED:
        abort(400, description=f"status must be one of {', '.join(RETRIED)}, not {wanted!r}")
    retried = dashboard().backend.retry([wanted])
    return redirect(url_for("pages.tasks", retried=len(retried)), code=303)


@pages.get("/tasks/<path:task_id>")
def task(task_id: str) -> str:
    backend = dashboard().backend
    view = backend.snapshot().task(task_id)
    if view is None:
        abort(404, description=f"There is no task {task_id!r} in the vault now.")
    attempts = backend.store.attempts(task_id=task_id, limit=TASK_HISTORY)
    return _page(
        "task.html",
        "tasks",
        view="task",
        ranged=False,
        task=view,
        in_progress=view.status in IN_PROGRESS,  # a re-run must wait for it to end
        stored=backend.store.task(task_id),
        attempts=[_attempt_row(a) for a in attempts],
        note=read_note(backend.vault, view.path),
        obsidian=obsidian_url(backend.vault, view.path),
        output_obsidian=obsidian_url(backend.vault, view.output) if view.output else None,
        rerun=request.args.get("rerun"),
        usage=usage(backend.store, "task_id").get(task_id, NONE),
        cost_text=cost_text,
    )


def _attempt_row(attempt: Attempt) -> dict[str, Any]:
    return {
        "attempt": attempt.attempt,
        "agent": attempt.agent,
        "status": attempt.status,
        "cache": attempt.cache,
        "queued_at": attempt.queued_at,
        "started_at": attempt.started_at,
        "ended_at": attempt.ended_at,
        "wait_ms": attempt.wait_ms,
        "duration_ms": attempt.duration_ms,
        "tokens_in": attempt.tokens_in,
        "tokens_out": attempt.tokens_out,
        "error": attempt.error,
    }


@pages.post("/tasks/<path:task_id>/rerun")
def rerun(task_id: str) -> BaseResponse:
    """The task page's button: back to `status: todo` through the write-back, then back to
    the page (303, so a reload does not post again)."""
    backend = dashboard().backend
    if backend.snapshot().task(task_id) is None:
        abort(404, description=f"There is no task {task_id!r} in the vault now.")
    outcome = "requested" if backend.rerun(task_id) else "refused"
    return redirect(url_for("pages.task", task_id=task_id, rerun=outcome), code=303)


@pages.get("/cache")
def cache() -> str:
    return _page("cache.html", "cache")


@pages.get("/problems")
def problems() -> str:
    return _page("problems.html", "problems", ranged=False)


@pages.get("/reports")
def reports() -> str:
    return _page("reports.html", "reports", ranged=False)


@pages.get("/notes/<path:rel_path>")
def note(rel_path: str) -> str:
    """Any visible note of the vault, as text: outputs and reports link here."""
    backend = dashboard().backend
    found = read_note(backend.vault, rel_path)
    if found is None:
        abort(404, description=f"There is no note {rel_path!r} in the vault.")
    parsed = parse_note(found.path, found.text)
    return _page(
        "note.html",
        "reports" if found.path.startswith("Reports/") else "tasks",
        view="note",
        ranged=False,
        note=found,
        frontmatter=parsed.frontmatter,
        # markdown-it escapes the note's own HTML, so the page shows it as is (`|safe`)
        rendered=render_markdown(
            parsed.body, lambda path: note_path(backend.vault, path) is not None
        ),
        obsidian=obsidian_url(backend.vault, found.path),
    )
