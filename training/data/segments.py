"""Which 3–5 s pieces of each utterance become training examples."""

from __future__ import annotations

import numpy as np


def plan_segments(
    n_samples: int,
    sample_rate: int,
    rng: np.random.Generator,
    min_seconds: float = 3.0,
    max_seconds: float = 5.0,
    segment: bool = False,
) -> list[tuple[int, int]]:
    """``(start, length)`` pieces, in samples, to take from an utterance of ``n_samples``.

    An utterance of ``min_seconds``–``max_seconds`` is kept whole. A longer one is
    dropped unless ``segment``: then it is cut from the start into consecutive,
    non-overlapping pieces of seeded random length in that range; a final remainder
    shorter than ``min_seconds`` is dropped. Shorter utterances are dropped.
    """
    lo, hi = int(round(min_seconds * sample_rate)), int(round(max_seconds * sample_rate))
    if lo <= n_samples <= hi:
        return [(0, n_samples)]
    if n_samples < lo or not segment:
        return []
    pieces, start = [], 0
    while n_samples - start >= lo:
        remaining = n_samples - start
        length = remaining if remaining <= hi else int(rng.integers(lo, min(hi, remaining) + 1))
        pieces.append((start, length))
        start += length
    return pieces
