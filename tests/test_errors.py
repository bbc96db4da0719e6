"""One classification of every failure: what `classify` makes of each exception."""

from __future__ import annotations

import pickle

import pytest

from vault_bmad.errors import (
    AttemptFailed,
    Failure,
    FailureKind,
    RuntimeRefused,
    RuntimeUnavailable,
    TaskTimeout,
    TemplateRenderError,
    WriteConflict,
    classify,
)

DETERMINISTIC, TRANSIENT = FailureKind.DETERMINISTIC, FailureKind.TRANSIENT


@pytest.mark.parametrize(
    ("exc", "kind", "counts"),
    [
        (TemplateRenderError("T.md", 3, "unexpected end"), DETERMINISTIC, False),
        (RuntimeRefused("the command runtime is off"), DETERMINISTIC, False),
        (WriteConflict("Docs/x.md is not UTF-8 text"), DETERMINISTIC, False),
        (KeyError("a bug"), DETERMINISTIC, False),
        (RuntimeUnavailable("'lint' exited with status 3"), TRANSIENT, True),
        (TaskTimeout("timed out after 3 s"), TRANSIENT, True),
        (OSError("disk full"), TRANSIENT, False),  # the write failed, not the agent
    ],
)
def test_each_exception_is_classified_once(
    exc: BaseException, kind: FailureKind, counts: bool
) -> None:
    failure = classify(exc)
    assert failure.kind is kind
    assert failure.retryable is (kind is TRANSIENT)
    assert failure.counts_toward_health is counts
    assert str(exc).strip("'") in failure.message


def test_a_runtimes_own_classification_wins_and_travels_to_other_processes() -> None:
    failure = Failure(
        TRANSIENT, "LLM server u could not be reached", endpoint="u", unreachable=True
    )
    exc = pickle.loads(pickle.dumps(AttemptFailed(failure)))
    assert classify(exc) == failure and str(exc) == failure.message
    assert classify(TaskTimeout("slow")).timed_out
