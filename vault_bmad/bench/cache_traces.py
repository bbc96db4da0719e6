"""Request traces for the cache benchmark: gzip files of integer keys, generated Zipf, or
generated loops (a workflow re-run over the same notes)."""

from __future__ import annotations

import gzip
import itertools
import random
from pathlib import Path

ZIPF_KEYS = 100_000
ZIPF_REQUESTS = 1_000_000
ZIPF_SEED = 20_240_601
LOOP_REQUESTS = 400_000
LOOP_SEED = 20_261_202


def read_trace(path: Path | str) -> list[int]:
    """Keys from a gzip text file with one integer key per line, in request order."""
    with gzip.open(path, "rb") as stream:
        return [int(token) for token in stream.read().split()]


def zipf_trace(
    alpha: float,
    *,
    keys: int = ZIPF_KEYS,
    requests: int = ZIPF_REQUESTS,
    seed: int = ZIPF_SEED,
) -> list[int]:
    """`requests` keys drawn independently with P(rank r) proportional to 1 / r**alpha."""
    if alpha <= 0:
        raise ValueError(f"zipf alpha must be positive, not {alpha}")
    cumulative = list(itertools.accumulate(1.0 / rank**alpha for rank in range(1, keys + 1)))
    return random.Random(seed).choices(range(keys), cum_weights=cumulative, k=requests)


def loop_trace(
    notes: int,
    *,
    requests: int = LOOP_REQUESTS,
    changed_share: float = 0.0,
    seed: int = LOOP_SEED,
) -> list[int]:
    """A workflow re-run over `notes` notes, again and again, for `requests` requests.

    Each run asks for every note's result in the same order (a shuffle fixed by `seed`).
    Between runs a `changed_share` of the notes may be edited, so their results are asked
    for under new keys from then on: the working set drifts, as a vault's does.
    """
    if notes < 1 or not 0 <= changed_share <= 1:
        raise ValueError(
            f"a loop needs notes >= 1 and a share in [0, 1], not {notes}, {changed_share}"
        )
    randomness = random.Random(seed)
    keys = list(range(notes))
    randomness.shuffle(keys)
    next_key = notes
    trace: list[int] = []
    while len(trace) < requests:
        trace += keys[: requests - len(trace)]
        for position in randomness.sample(range(notes), round(notes * changed_share)):
            keys[position] = next_key
            next_key += 1
    return trace


def load_trace(spec: str) -> list[int]:
    """`zipf:ALPHA` generates a Zipf trace; `loop:NOTES` a loop, `loop:NOTES:SHARE` one
    whose notes change by that share between runs; anything else is a trace file's path."""
    if spec.startswith("zipf:"):
        return zipf_trace(float(spec.removeprefix("zipf:")))
    if spec.startswith("loop:"):
        notes, _, share = spec.removeprefix("loop:").partition(":")
        return loop_trace(int(notes), changed_share=float(share or 0))
    return read_trace(spec)
