"""A Mermaid Gantt chart of a period's tasks, in a ```mermaid block Obsidian renders natively.

One section per agent, one bar per task: its latest attempt, in local time, `done` (grey)
when it ended done, `crit` (red) when it failed. A chart of thousands of bars is
unreadable, so it shows the `max_bars` longest. The axis reads to the millisecond when
the chart spans less than `MS_AXIS_BELOW_S`.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Sequence
from datetime import datetime

from vault_bmad.metrics.figures import TaskFigures

MAX_BARS = 50
MS_AXIS_BELOW_S = 10.0
DATE_FORMAT = "YYYY-MM-DD HH:mm:ss.SSS"  # dayjs tokens, as Mermaid parses dates

# Mermaid's gantt lexer reads `#` and `%` as comments, `:` as the start of a bar's data and
# `;` as a line end; a backtick run could close the Markdown fence. Their full-width forms
# read the same.
_UNSAFE = str.maketrans({"#": "＃", "%": "％", ":": "：", ";": "；", "`": "'"})
_TITLE_UNSAFE = str.maketrans({"#": "＃", "%": "％", ";": "；", "`": "'"})
# A name starting with one of these would be lexed as a statement (Mermaid 9-11).
_STATEMENT = re.compile(
    r"(gantt|dateformat|inclusiveenddates|topaxis|axisformat|tickinterval|includes|excludes"
    r"|todaymarker|weekday|weekend|title|accdescription|acctitle|accdescr|section|click"
    r"|call|href)\b|\d{4}-\d{2}-\d{2}",
    re.IGNORECASE,
)


def mermaid_text(text: str) -> str:
    """`text` as a safe Gantt title, section or bar name: one line, no syntax in it."""
    clean = " ".join(text.translate(_UNSAFE).split()) or "(untitled)"
    return f"“{clean}”" if _STATEMENT.match(clean) else clean


def mermaid_title(text: str) -> str:
    """`text` as a safe Gantt title, which may hold colons: it follows the `title` keyword."""
    return " ".join(text.translate(_TITLE_UNSAFE).split()) or "(untitled)"


def chosen_bars(tasks: Sequence[TaskFigures], max_bars: int = MAX_BARS) -> list[TaskFigures]:
    """The `max_bars` tasks whose latest attempt ran longest, in order of its start."""
    longest = heapq.nsmallest(max_bars, tasks, key=lambda t: (-t.last_run_s, t.last_started))
    return sorted(longest, key=lambda t: (t.last_started, t.task_id))


def gantt_block(
    bars: Sequence[TaskFigures],
    *,
    title: str,
    bar_name: Callable[[str], str],
    section_name: Callable[[str], str],
) -> list[str]:
    """The fenced Mermaid block's lines: one section per agent (by section name), bars by start.

    `bar_name` names a task id, `section_name` an agent id; both are made safe here.
    """
    if not bars:
        return []
    length = max(t.ended for t in bars) - min(t.last_started for t in bars)
    axis = (
        "%H:%M:%S.%L"
        if length < MS_AXIS_BELOW_S
        else "%H:%M:%S"
        if length < 3600
        else "%H:%M"
        if length < 86_400
        else "%m-%d %H:%M"
    )
    lines = [
        "```mermaid",
        "gantt",
        f"    title {mermaid_title(title)}",
        f"    dateFormat {DATE_FORMAT}",
        f"    axisFormat {axis}",
    ]
    sections: dict[str, list[int]] = {}
    for number, bar in enumerate(bars):
        sections.setdefault(mermaid_text(section_name(bar.agent)), []).append(number)
    for section in sorted(sections, key=str.casefold):
        lines.append(f"    section {section}")
        for number in sections[section]:
            bar = bars[number]
            tag = "done" if bar.status == "done" else "crit"
            start_ms = round(bar.last_started * 1000)
            end_ms = max(start_ms + 1, round(bar.ended * 1000))  # a zero-length bar vanishes
            lines.append(
                f"    {mermaid_text(bar_name(bar.task_id))} :{tag}, t{number + 1}, "
                f"{_stamp(start_ms)}, {_stamp(end_ms)}"
            )
    lines.append("```")
    return lines


def _stamp(epoch_ms: int) -> str:
    """Local time to the millisecond, in DATE_FORMAT."""
    seconds, millis = divmod(epoch_ms, 1000)
    return f"{datetime.fromtimestamp(seconds):%Y-%m-%d %H:%M:%S}.{millis:03d}"
