"""Where a task stands: every status word, written once, and the groups the code asks about.

A task note's `status:` is a `TaskStatus`. While a run has the task, it also has a `Phase`:
`waiting` for its dependencies (never written to a note), then in progress, then an outcome.
A workflow step whose condition the run does not meet ends `skipped` without running; a
user may also write `skipped` on a task to leave it out. Either way it counts as ended.

A task whose agent asked its user something is `needs-input` until the note's `answers:`
answer every question. It is not an end state (its dependants wait for it), it blocks
nothing else (other branches run on), and it is not in progress: it holds no worker, and a
stop or a crash leaves it waiting, as it was.
"""

from __future__ import annotations

from typing import Literal, get_args

Outcome = Literal["done", "failed", "blocked", "skipped"]  # how a run ends a task
InProgress = Literal["queued", "running"]  # a run has taken the task and not ended it
NeedsInput = Literal["needs-input"]  # its agent asked; it waits for the note's `answers:`
TaskStatus = Literal["todo", "invalid", InProgress, NeedsInput, Outcome]  # what a note can say
Waiting = Literal["waiting"]  # in a run, waiting for its dependencies
Phase = Literal[Waiting, InProgress, NeedsInput, Outcome]  # where a task stands in a run
Stop = Literal[Outcome, NeedsInput]  # where a run leaves a task: ended, or waiting for its user

NEEDS_INPUT: NeedsInput = "needs-input"
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)  # in the order reports list them
STOPS: tuple[Stop, ...] = (*OUTCOMES, NEEDS_INPUT)  # in the order reports list them
IN_PROGRESS: tuple[InProgress, ...] = get_args(InProgress)  # found at start: interrupted
PENDING: tuple[Phase, ...] = (*get_args(Waiting), *IN_PROGRESS)  # a run has it, not ended
# A run holds nothing for it (ended, or waiting for answers): `status: todo` runs it afresh.
REOPENABLE: tuple[Phase, ...] = STOPS
# Ended without a fault: its dependants may start, and a run of only these exits 0.
ENDED_WELL: frozenset[Outcome] = frozenset({"done", "skipped"})
BLOCKS_DEPENDANTS: frozenset[TaskStatus] = frozenset({"failed", "blocked", "invalid"})
# Statuses a run starting over the vault puts back to todo: stopped part way, blocked by a
# failure that may be fixed now, or invalid in a note that may read well now.
RESET_TO_TODO: frozenset[TaskStatus] = frozenset({*IN_PROGRESS, "blocked", "invalid"})
