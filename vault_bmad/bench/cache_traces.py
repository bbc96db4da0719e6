"""Request traces for the cache benchmark: gzip files of integer keys, or generated Zipf."""

from __future__ import annotations

import gzip
import itertools
import random
from pathlib import Path

ZIPF_KEYS = 100_000
ZIPF_REQUESTS = 1_000_000
ZIPF_SEED = 20_240_601


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


def load_trace(spec: str) -> list[int]:
    """`zipf:ALPHA` generates a Zipf trace; anything else is a trace file's path."""
    if spec.startswith("zipf:"):
        return zipf_trace(float(spec.removeprefix("zipf:")))
    return read_trace(spec)
