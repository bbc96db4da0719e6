"""Tokens and cost: spent by the calls agents made, saved by the cache, from the store.

Every figure of tokens or cost shown anywhere (the API, the dashboard, /metrics, the run
report and the period report) comes from `usage`: one SQL aggregate over the attempts and
the calls in which agents asked their users something (`asks`, never cached).
An attempt's tokens are those of its answer: spent when it missed the cache, saved when a
cache level served it. Cost follows the user's `llm_prices`; a model with no price has
none, so a total is None until some attempt had a price.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

from vault_bmad.metrics.store import Store

Group = Literal["agent", "task_id", "all"]

_USAGE_SQL = """
SELECT {key} AS key,
       TOTAL(CASE WHEN cache = 'miss' THEN tokens_in ELSE 0 END) AS tokens_in,
       TOTAL(CASE WHEN cache = 'miss' THEN tokens_out ELSE 0 END) AS tokens_out,
       SUM(CASE WHEN cache = 'miss' THEN cost END) AS cost,
       TOTAL(calls) AS calls,
       TOTAL(CASE WHEN cache != 'miss' THEN tokens_in ELSE 0 END) AS saved_tokens_in,
       TOTAL(CASE WHEN cache != 'miss' THEN tokens_out ELSE 0 END) AS saved_tokens_out,
       SUM(CASE WHEN cache != 'miss' THEN cost END) AS saved_cost
FROM (
    SELECT agent, task_id, cache, tokens_in, tokens_out, cost, calls, ended_at FROM attempts
    UNION ALL
    SELECT agent, task_id, 'miss', tokens_in, tokens_out, cost, 1, asked_at FROM asks
)
WHERE ended_at >= :since AND ended_at < :until
GROUP BY key
"""
_KEYS = {"agent": "agent", "task_id": "task_id", "all": "''"}


@dataclass(frozen=True)
class Usage:
    """Tokens and cost of a set of attempts: what the calls spent, what the cache saved."""

    tokens_in: int = 0  # prompt tokens
    tokens_out: int = 0  # completion tokens
    cost: float | None = None
    calls: int = 0
    saved_tokens_in: int = 0
    saved_tokens_out: int = 0
    saved_cost: float | None = None

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    @property
    def saved_tokens(self) -> int:
        return self.saved_tokens_in + self.saved_tokens_out

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "tokens": self.tokens, "saved_tokens": self.saved_tokens}


NONE = Usage()


def usage(
    store: Store, by: Group = "all", since: float | None = None, until: float | None = None
) -> dict[str, Usage]:
    """Usage of the attempts that ended in `[since, until)`, by agent, by task, or all
    (the key ""). Reads what is committed: flush the store first for its latest writes."""
    rows = store.query(
        _USAGE_SQL.format(key=_KEYS[by]),
        {"since": since if since is not None else float("-inf"), "until": until or float("inf")},
    )
    return {
        str(row["key"]): Usage(
            int(row["tokens_in"]),
            int(row["tokens_out"]),
            row["cost"],
            int(row["calls"]),
            int(row["saved_tokens_in"]),
            int(row["saved_tokens_out"]),
            row["saved_cost"],
        )
        for row in rows
    }


def total(store: Store, since: float | None = None, until: float | None = None) -> Usage:
    return usage(store, "all", since, until).get("", NONE)


def cost_text(cost: float | None) -> str:
    """A cost as reports and pages show it: four decimals, or "-" without a price."""
    return "-" if cost is None else f"{cost:.4f}"
