"""80/10/10 splits by group (speaker, ESC-50 source recording), balanced on a weight."""

from __future__ import annotations

from collections import defaultdict
from typing import Hashable, Mapping, Sequence, TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)

SPLITS: tuple[str, ...] = ("train", "val", "test")
FRACTIONS: tuple[float, ...] = (0.8, 0.1, 0.1)


def assign_groups(
    weights: Mapping[K, float],
    rng: np.random.Generator,
    fractions: Sequence[float] = FRACTIONS,
    splits: Sequence[str] = SPLITS,
) -> dict[K, str]:
    """Give each group a split so each split's total weight is close to its fraction.

    Groups heavier than half the smallest split's target are placed first,
    heaviest first (so the few dominant speakers land in train); the rest follow in
    seeded random order. Each group goes to the split furthest below its target.
    When there are at least as many groups as splits, no split is left empty: the
    lightest group of the most populated split is moved into an empty one.
    """
    keys = sorted(weights, key=str)
    if not keys:
        return {}
    total = float(sum(weights[k] for k in keys))
    targets = np.asarray(fractions, dtype=float) * total
    heavy_limit = targets.min() / 2.0
    heavy = sorted((k for k in keys if weights[k] > heavy_limit), key=lambda k: (-weights[k], str(k)))
    light = [k for k in keys if weights[k] <= heavy_limit]
    light = [light[i] for i in rng.permutation(len(light))]
    filled = np.zeros(len(splits))
    members: dict[int, list[K]] = defaultdict(list)
    for k in heavy + light:
        i = int(np.argmax(targets - filled))
        filled[i] += weights[k]
        members[i].append(k)
    if len(keys) >= len(splits):
        for i in range(len(splits)):
            if not members[i]:
                donor = max(range(len(splits)), key=lambda j: len(members[j]))
                k = min(members[donor], key=lambda g: (weights[g], str(g)))
                members[donor].remove(k)
                members[i].append(k)
    return {k: splits[i] for i, ks in members.items() for k in ks}


def split_noise_sources(
    clips: Sequence[tuple[str, str]],
    rng: np.random.Generator,
    fractions: Sequence[float] = FRACTIONS,
    splits: Sequence[str] = SPLITS,
) -> dict[tuple[str, str], str]:
    """Split ``(category, src_file)`` clips by source recording, within each category.

    Every take of one ``src_file`` lands on the same side; each category is split
    about 80/10/10 by clip count, so every split gets every category (when the
    category has at least as many source recordings as there are splits).
    """
    by_category: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for category, src in clips:
        by_category[category][src] += 1.0
    out: dict[tuple[str, str], str] = {}
    for category in sorted(by_category):
        for src, split in assign_groups(by_category[category], rng, fractions, splits).items():
            out[(category, src)] = split
    return out
