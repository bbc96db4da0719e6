"""The `vault-bmad` command: thin shells over the library.

Every command over a vault takes `--config` and `--format` (`vault_options`), and any
VaultBmadError a command raises ends it with a one-line message and exit code 2
(`VaultBmadCommands`): a setting, a missing vault, a port in use, a Dask scheduler out of
reach. Exit 1 means the command ran and something in the vault failed or is invalid.
`run` and `serve` stop cleanly on SIGTERM and Ctrl-C (`StopSignals`). Each command
imports what it uses inside its body, so `check` never pays for Flask, Plotly or the
engine (tests/test_start_imports.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from vault_bmad import __version__
from vault_bmad.config import STATE_DB, STRATEGIES, VAULT_FILE_NAME, Settings, load_settings
from vault_bmad.errors import ConfigError, Problem, SetupError, VaultBmadError

if TYPE_CHECKING:
    from vault_bmad.service import ServiceEvent


def _existing_vault(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    if not value.is_dir():
        why = "it is a file" if value.exists() else "no such folder"
        raise SetupError(f"no vault at {value}: {why}")
    return value


VAULT_ARGUMENT = click.argument("vault", type=click.Path(path_type=Path), callback=_existing_vault)
_Command = TypeVar("_Command", bound=Callable[..., Any])

format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for scripts.",
)
config_option = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Your config file, read instead of ~/.config/vault-bmad/config.toml.",
)


def vault_options(command: _Command) -> _Command:
    """`--config` and `--format`, for every command over a vault."""
    return config_option(format_option(command))


class CommandFailed(click.ClickException):
    """A VaultBmadError, shown as `Error: ` and one line, exiting 2 as click's usage errors."""

    exit_code = 2


class VaultBmadCommands(click.Group):
    """The command group; the one place a VaultBmadError becomes a message and exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except VaultBmadError as exc:
            lines = (line.strip() for line in str(exc).splitlines())
            raise CommandFailed("; ".join(line for line in lines if line)) from None


@click.group(cls=VaultBmadCommands)
@click.version_option(__version__, prog_name="vault-bmad")
def main() -> None:
    """Run AI agents, workflows and tasks written as notes in an Obsidian vault."""


class StopSignals:
    """SIGTERM and Ctrl-C ask the command to stop cleanly instead of killing it; `code` is
    the exit code a stop should end with (128 + the signal)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: int | None = None
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._received)

    def _received(self, signum: int, frame: object) -> None:
        self.signal = signum
        self.event.set()

    @property
    def code(self) -> int:
        return 128 + (self.signal or signal.SIGTERM)


def _exit_leaving_threads(code: int) -> None:
    """Exit now: worker threads may sit in a long agent call whose result is no longer
    wanted, and everything is written, so do not wait for them at interpreter exit."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@main.group()
def bench() -> None:
    """Benchmarks that print JSON and compare against peers in the same run."""


@bench.command("cache")
@click.option(
    "--trace", "trace_spec", required=True, help="Trace file (gzip), zipf:ALPHA or loop:NOTES."
)
@click.option("--capacity", type=click.IntRange(min=1), required=True, help="Entries cached.")
@format_option
def bench_cache(trace_spec: str, capacity: int, output_format: str) -> None:
    """Replay a trace through vault-bmad's cache policy, its peers and OPT."""
    from vault_bmad.bench.cache_replay import compare, render_table
    from vault_bmad.bench.cache_traces import load_trace

    try:
        trace = load_trace(trace_spec)
    except (OSError, ValueError, EOFError) as exc:
        raise click.ClickException(f"cannot read trace {trace_spec}: {exc}") from None
    name = trace_spec if trace_spec.startswith(("zipf:", "loop:")) else Path(trace_spec).name
    try:
        document = compare(name.removesuffix(".gz").removesuffix(".keys"), trace, capacity)
    except ModuleNotFoundError as exc:  # a peer from the bench extra
        raise click.ClickException(
            f"the benchmark's peer {exc.name} is not installed: pip install 'vault-bmad[bench]'"
        ) from None
    click.echo(
        json.dumps(document, indent=2) if output_format == "json" else render_table(document)
    )


@bench.command("workload")
@click.option("--quick", is_flag=True, help="A short run (under 45 s on two cores).")
@click.option("--repeats", type=click.IntRange(min=1), help="Runs per system; medians reported.")
@format_option
def bench_workload(quick: bool, repeats: int | None, output_format: str) -> None:
    """vault-bmad against one-at-a-time, a thread pool and Dask on a generated vault."""
    from dataclasses import replace

    from vault_bmad.bench.workload import FULL, QUICK, run_workload

    plan = QUICK if quick else FULL
    plan = replace(plan, repeats=repeats) if repeats else plan
    show = output_format == "text"
    document = run_workload(
        plan, on_progress=lambda line: click.echo(line, err=True) if show else None
    )
    click.echo(json.dumps(document, indent=2))


@main.command("index")
@VAULT_ARGUMENT
@vault_options
def index_command(vault: Path, config_file: Path | None, output_format: str) -> None:
    """List every note with its type, tags, frontmatter and resolved links."""
    from vault_bmad.vault.index import VaultIndex

    load_settings(vault, config_file)  # a broken config is reported by every command
    notes = VaultIndex.load(vault).as_dict()["notes"]
    if output_format == "json":
        click.echo(json.dumps({"notes": notes}, indent=2, ensure_ascii=False))
        return
    for note in notes:
        unresolved = sum(link["target"] is None for link in note["links"])
        problem = f"  ({note['error']})" if note["error"] else ""
        click.echo(
            f"{note['path']}  type={note['type'] or '-'}  links={len(note['links'])}"
            f"  unresolved={unresolved}{problem}"
        )
    click.echo(f"{len(notes)} note{'' if len(notes) == 1 else 's'}")


@main.command()
@VAULT_ARGUMENT
@vault_options
def check(vault: Path, config_file: Path | None, output_format: str) -> None:
    """Validate the settings and the vault's agents, workflows and tasks; exit 1 when there
    are errors (warnings only say how something doubtful was read).

    The vault's own vault-bmad.toml is part of the vault: what is wrong in it is listed
    with the notes' problems, and what it sets applies to the check."""
    from vault_bmad.metrics.marks import stored_invalid_marks
    from vault_bmad.model.validate import build_definitions
    from vault_bmad.runtimes.command_rules import agent_problems
    from vault_bmad.vault.index import VaultIndex

    settings, problems = vault_settings(vault, config_file)
    index = VaultIndex.load(vault)
    marks = stored_invalid_marks(vault / settings.state_dir / STATE_DB)
    definitions = build_definitions(index, marks, settings.output_folder)
    problems += definitions.problems
    problems += agent_problems(definitions.agents.values(), settings)
    counts = {
        "notes": len(index.notes),
        "agents": len(definitions.agents),
        "workflows": len(definitions.workflows),
        "tasks": len(definitions.tasks),
    }
    if output_format == "json":
        click.echo(json.dumps({**counts, "problems": [p.as_dict() for p in problems]}, indent=2))
    else:
        for problem in problems:
            click.echo(str(problem))
        summary = ", ".join(f"{n} {kind}" for kind, n in counts.items())
        warnings = sum(not p.is_error for p in problems)
        of_which = f" ({warnings} warning{'' if warnings == 1 else 's'})" if warnings else ""
        plural = "" if len(problems) == 1 else "s"
        click.echo(f"{summary}, {len(problems)} problem{plural}{of_which}")
    sys.exit(1 if any(p.is_error for p in problems) else 0)


def vault_settings(vault: Path, config_file: Path | None) -> tuple[Settings, list[Problem]]:
    """The settings `check` validates with, and the problems of the vault's own file; a
    problem of the user's config or environment stops the command as everywhere."""
    try:
        return load_settings(vault, config_file), []
    except ConfigError as exc:
        settings = load_settings(None, config_file)  # raises when the vault file is not to blame
        lines = [line for line in str(exc).splitlines() if line.strip()]
        return settings, [Problem(VAULT_FILE_NAME, _toml_line(line), line) for line in lines]


def _toml_line(message: str) -> int | None:
    found = re.search(r"at line (\d+)", message)
    return int(found[1]) if found else None


@main.command()
@VAULT_ARGUMENT
@click.option("--strategy", type=click.Choice(STRATEGIES), help="How to pick an agent.")
@click.option("--workers", type=click.IntRange(1, 1000), help="Most tasks running at once.")
@click.option(
    "--executor", help="Where attempts run: thread, dask (local cluster) or dask://HOST:PORT."
)
@vault_options
def run(
    vault: Path,
    strategy: str | None,
    workers: int | None,
    executor: str | None,
    config_file: Path | None,
    output_format: str,
) -> None:
    """Run every `todo` task to an end state, write the results back, then exit.

    Exits 0 when every task ended done (or skipped), 1 when any failed, was blocked or is
    invalid, 3 when none did but an agent asked its user something (its task is
    `needs-input` until the note's `answers:` are saved and vault-bmad runs again), and
    128 + the signal when SIGTERM or Ctrl-C stopped it (running and queued tasks go back to
    `todo`; the report says which).
    """
    overrides: dict[str, object] = {"strategy": strategy, "executor": executor}
    if workers is not None:
        overrides |= {"max_workers": workers, "min_workers": 1, "max_concurrent_agents": workers}
    settings = load_settings(vault, config_file, overrides=overrides)
    _run_and_tell(vault, settings, output_format)


def _run_and_tell(vault: Path, settings: Settings, output_format: str) -> None:
    """`run_vault`, its progress on stderr, its outcome on stdout, and its exit code."""
    from vault_bmad.metrics.usage import NONE
    from vault_bmad.model.status import ENDED_WELL, NEEDS_INPUT, STOPS
    from vault_bmad.progress import RunProgress
    from vault_bmad.runner import run_vault

    stops = StopSignals()
    progress = RunProgress(enabled=output_format == "text")
    try:
        result = run_vault(
            vault,
            settings,
            on_event=progress.event,
            on_start=progress.start,
            stop=stops.event.is_set,
        )
    finally:
        progress.close()
    summary = result.summary
    counts: dict[str, int] = {status: summary.count(status) for status in STOPS}
    if output_format == "json":
        tasks = {
            task_id: {**asdict(outcome), **result.usage.get(task_id, NONE).as_dict()}
            for task_id, outcome in sorted(summary.outcomes.items())
        }
        payload = {
            **counts,
            "invalid": list(result.invalid),
            "problems": [problem.as_dict() for problem in result.problems],
            "stopped": summary.stopped,
            "report": result.report,
            "usage": result.spent.as_dict(),
            "tasks": tasks,
        }
        click.echo(json.dumps(payload, indent=2))
    else:
        for outcome in sorted(summary.outcomes.values(), key=lambda o: o.task_id):
            if outcome.status == NEEDS_INPUT:
                asks = " ".join(f"({n}) {q}" for n, q in enumerate(outcome.questions, 1))
                click.echo(
                    f"{outcome.status}: {outcome.task_id}: {asks} (answer in {outcome.path})"
                )
            elif outcome.status not in ENDED_WELL:
                click.echo(f"{outcome.status}: {outcome.task_id}: {outcome.error}")
            elif outcome.truncated:
                click.echo(f"truncated: {outcome.task_id}: its answer was cut off")
        reasons: dict[str, list[str]] = {}
        for problem in result.problems:
            reasons.setdefault(problem.path, []).append(problem.message)
        for path in result.invalid:
            click.echo(f"invalid: {path}: {'; '.join(reasons.get(path, []))}")
        if summary.stopped:
            click.echo(f"stopped: back to todo: {', '.join(summary.stopped)}")
        line = ", ".join(f"{n} {status}" for status, n in counts.items())
        click.echo(
            f"{line}, {len(result.invalid)} invalid"
            + (f"; report: {result.report}" if result.report else "")
        )
    if summary.stopped or stops.event.is_set():
        _exit_leaving_threads(stops.code)
    sys.exit(result.exit_code)


@main.command()
@VAULT_ARGUMENT
@click.option("--failed", "failed", is_flag=True, help="Tasks that failed.")
@click.option("--blocked", "blocked", is_flag=True, help="Tasks blocked by one that failed.")
@vault_options
def retry(
    vault: Path, failed: bool, blocked: bool, config_file: Path | None, output_format: str
) -> None:
    """Set failed and blocked tasks (or only those the flags name) back to `todo` and run
    them, as `run` does. While `serve` runs on the vault, it runs them instead."""
    from vault_bmad.runner import retry_tasks

    settings = load_settings(vault, config_file)
    statuses = [s for s, wanted in (("failed", failed), ("blocked", blocked)) if wanted]
    retried = retry_tasks(vault, settings, statuses or ["failed", "blocked"])
    if not retried.paths:
        click.echo("nothing to retry", err=True)
        sys.exit(0)
    click.echo(f"back to todo: {', '.join(retried.paths)}", err=True)
    if retried.served:
        click.echo("the running `serve` picks them up", err=True)
        sys.exit(0)
    _run_and_tell(vault, settings, output_format)


@main.command("report")
@VAULT_ARGUMENT
@click.option(
    "--since", default="24h", show_default=True, help="How far back: 90m, 24h, 7d or all."
)
@vault_options
def report_command(vault: Path, since: str, config_file: Path | None, output_format: str) -> None:
    """Write a performance report note under Reports/ and print its path.

    The same period (in whole minutes) rewrites the same note. `--format json` prints
    the analysis too.
    """
    from vault_bmad.metrics.report import parse_span
    from vault_bmad.reports import write_vault_report

    try:
        span = parse_span(since)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--since'") from None
    written = write_vault_report(vault, load_settings(vault, config_file), span)
    if output_format == "json":
        payload = {
            "report": written.path,
            **written.analysis.as_dict(),
            "questions": asdict(written.questions),
        }
        click.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        click.echo(written.path)


@main.command()
@VAULT_ARGUMENT
@click.option("--host", help="Address to bind; default 127.0.0.1. Elsewhere needs a token.")
@click.option("--port", type=click.IntRange(0, 65535), help="Port; default 8765.")
@click.option(
    "--executor", help="Where attempts run: thread, dask (local cluster) or dask://HOST:PORT."
)
@vault_options
def serve(
    vault: Path,
    host: str | None,
    port: int | None,
    executor: str | None,
    config_file: Path | None,
    output_format: str,
) -> None:
    """Watch the vault, run what is ready, write results back, and serve the dashboard.

    Stops cleanly on Ctrl-C or SIGTERM: running tasks get a few seconds to finish, and
    the rest go back to `todo`. With `--format json`, it tells when it is serving,
    stopping and stopped as JSON lines on stdout.
    """
    from vault_bmad.progress import RunProgress
    from vault_bmad.service import Service

    overrides = {"host": host, "port": port, "executor": executor}
    progress = RunProgress(enabled=output_format != "json")  # a line per task move
    service = Service(vault, load_settings(vault, config_file, overrides=overrides), progress.event)

    def tell(event: ServiceEvent) -> None:
        if output_format == "json":
            line: dict[str, object] = {"event": event, "dashboard": service.url}
            if event == "stopped":
                line["back_to_todo"] = service.unfinished
            click.echo(json.dumps(line))
        elif event == "serving":
            click.echo(f"vault-bmad is serving {vault} — dashboard: {service.url}", err=True)
        elif event == "stopping":
            click.echo("stopping…", err=True)
        elif service.unfinished:
            click.echo(f"back to todo: {', '.join(service.unfinished)}", err=True)

    service.run(tell)
    if service.unfinished:
        _exit_leaving_threads(0)


# Keep this last: `python -m vault_bmad.cli` must see every command defined above.
if __name__ == "__main__":
    main()
