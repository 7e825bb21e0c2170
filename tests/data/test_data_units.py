"""Unit tests of the dataset pipeline's pure pieces: segmenting, splitting, mixing."""

from __future__ import annotations

import numpy as np
import pytest

from denoise_core.signal import snr_db
from training.data.mixing import mix, target_snr
from training.data.segments import plan_segments
from training.data.splits import assign_groups, split_noise_sources

SR = 16000


def test_plan_segments_whole_long_and_short() -> None:
    rng = np.random.default_rng(0)
    assert plan_segments(4 * SR, SR, rng) == [(0, 4 * SR)]
    assert plan_segments(2 * SR, SR, rng, segment=True) == []
    assert plan_segments(12 * SR, SR, rng, segment=False) == []
    pieces = plan_segments(14 * SR, SR, rng, segment=True)
    assert len(pieces) >= 3
    for (start, length), nxt in zip(pieces, pieces[1:] + [None]):
        assert 3 * SR <= length <= 5 * SR
        if nxt is not None:
            assert nxt[0] == start + length  # consecutive, non-overlapping
    assert pieces[-1][0] + pieces[-1][1] <= 14 * SR
    again = plan_segments(14 * SR, SR, np.random.default_rng(0), segment=True)
    assert plan_segments(14 * SR, SR, np.random.default_rng(0), segment=True) == again


def test_assign_groups_balances_minutes_and_puts_big_speakers_in_train() -> None:
    weights = {1: 25.0, 2: 25.0, 3: 25.0, **{100 + i: 0.25 + 0.01 * i for i in range(120)}}
    total = sum(weights.values())
    split = assign_groups(weights, np.random.default_rng(3))
    assert set(split) == set(weights)
    assert split[1] == split[2] == split[3] == "train"
    for name, frac in (("train", 0.8), ("val", 0.1), ("test", 0.1)):
        share = sum(w for k, w in weights.items() if split[k] == name) / total
        assert abs(share - frac) < 0.02, (name, share)
    assert split != assign_groups(weights, np.random.default_rng(4))  # the seed matters


def test_assign_groups_never_leaves_a_split_empty() -> None:
    split = assign_groups({1: 10.0, 2: 10.0, 3: 10.0}, np.random.default_rng(0))
    assert sorted(split.values()) == ["test", "train", "val"]


def test_noise_split_keeps_src_file_together_and_each_split_gets_each_category() -> None:
    clips = [("rain", f"r{i}") for i in range(10)] + [("thunderstorm", f"t{i // 2}") for i in range(12)]
    split = split_noise_sources(clips, np.random.default_rng(0))
    for category in ("rain", "thunderstorm"):
        assert {s for (c, _), s in split.items() if c == category} == {"train", "val", "test"}


def test_mix_reference_and_snr_modes() -> None:
    rng = np.random.default_rng(0)
    speech = rng.standard_normal(3 * SR).astype(np.float32) * 0.1
    pool = rng.standard_normal((2, 5 * SR)).astype(np.float32)
    ref = mix(speech, pool, np.random.default_rng(1), 5 * SR, None)
    noise = ref.noisy - ref.clean
    assert np.allclose(ref.clean[: 3 * SR], speech) and not ref.clean[3 * SR :].any()
    assert ref.snr_db == pytest.approx(snr_db(speech, noise[: 3 * SR]))
    # noise/2 of one pool clip, circularly shifted (tiled from a random offset)
    assert np.allclose(np.sort(noise * 2), np.sort(pool[ref.noise_index]), atol=1e-6)
    m = mix(speech, pool, np.random.default_rng(1), 5 * SR, 5.0)
    assert snr_db(speech, (m.noisy - m.clean)[: 3 * SR]) == pytest.approx(5.0, abs=1e-3)
    assert [target_snr("snr", "val", i, rng, (-5, 10)) for i in range(5)] == [-5, 0, 5, 10, -5]
    assert -5 <= target_snr("snr", "train", 0, rng, (-5, 10)) <= 10
    assert target_snr("reference", "train", 0, rng, (-5, 10)) is None
