"""Checkpoint choice by validation quality: the score, the log, and scoring a real split."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.training

from denoise_core.signal import SignalSpec  # noqa: E402
from training.datasets import SplitArrays  # noqa: E402
from training.quality import COLUMNS, TARGETS, quality_score, read_log, score_enhancer, score_split  # noqa: E402


def test_score_is_the_mean_ratio_to_the_targets() -> None:
    assert quality_score(dict(TARGETS)) == pytest.approx(1.0)
    better_pesq = {**TARGETS, "pesq": TARGETS["pesq"] * 1.4}
    better_sdr = {**TARGETS, "si_sdr": TARGETS["si_sdr"] * 1.4}
    assert quality_score(better_pesq) == pytest.approx(quality_score(better_sdr)) == pytest.approx(1.1)
    assert np.isnan(quality_score({**TARGETS, "dnsmos_ovrl": float("nan")}))


def test_log_keeps_the_last_row_of_an_epoch_scored_twice(tmp_path: Path) -> None:
    with (tmp_path / "quality.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for epoch, score in ((10, 0.5), (20, 0.6), (20, 0.7)):
            writer.writerow({"epoch": epoch, "score": score})
    rows = read_log(tmp_path)
    assert [(r["epoch"], r["score"]) for r in rows] == [("10", "0.5"), ("20", "0.7")]
    assert read_log(tmp_path / "missing") == []


def test_score_split_scores_a_pass_through_against_the_clean_speech(shared_data: Path) -> None:
    """A pass-through mask returns the noisy mixture: its figures are the noisy input's, and a
    mask that keeps nothing scores worse."""
    import soundfile as sf

    from denoise_core.signal import resample, to_mono

    flac = sorted((shared_data / "LibriSpeech").rglob("*.flac"))[0]
    speech, sr = sf.read(flac, dtype="float32", always_2d=True)
    speech = resample(to_mono(speech), sr, 16000)[: 4 * 16000]
    rain_file = sorted((shared_data / "ESC-50" / "audio").glob("*-10.wav"))[0]
    rain, sr = sf.read(rain_file, dtype="float32", always_2d=True)
    rain = resample(to_mono(rain), sr, 16000)[: speech.shape[0]]
    noisy = speech + 0.5 * rain * np.std(speech) / np.std(rain)
    arrays = SplitArrays(clean=speech[None], noisy=noisy[None].astype(np.float32), lengths=np.array([speech.shape[0]]))
    spec = SignalSpec(output="mask")
    keep = score_split(lambda x, training=False: np.ones(x.shape, np.float32), spec, arrays)
    assert 4.0 < keep["si_sdr"] < 8.0  # about the 6 dB SNR of the mixture
    assert 1.0 < keep["pesq"] < 4.6 and 0.5 < keep["stoi"] <= 1.0 and 1.0 < keep["dnsmos_ovrl"] < 5.0
    halve = score_split(lambda x, training=False: np.full(x.shape, 1e-3, np.float32), spec, arrays)
    # PESQ aligns levels, so a uniform gain leaves it equal up to float rounding
    assert halve["dnsmos_ovrl"] < keep["dnsmos_ovrl"] and halve["pesq"] <= keep["pesq"] + 1e-4


def test_score_enhancer_computes_only_the_figures_asked_for() -> None:
    rng = np.random.default_rng(0)
    clean = rng.standard_normal((2, 8000)).astype(np.float32)
    noisy = clean + 0.1 * rng.standard_normal((2, 8000)).astype(np.float32)
    arrays = SplitArrays(clean=clean, noisy=noisy, lengths=np.array([8000, 6000]))
    seen: list[int] = []

    def enhance(wave: np.ndarray) -> np.ndarray:
        seen.append(wave.shape[0])
        return wave

    figures = score_enhancer(enhance, arrays, ("si_sdr",))
    assert list(figures) == ["si_sdr"] and seen == [8000, 6000]  # each mixture cut to its length
    assert 19.0 < figures["si_sdr"] < 21.0  # noise at a tenth of the speech's amplitude: 20 dB


def test_split_rows_are_a_slice_of_every_array() -> None:
    arrays = SplitArrays(clean=np.arange(10).reshape(5, 2), noisy=-np.arange(10).reshape(5, 2), lengths=np.arange(5),
                         speakers=np.array(list("abcde")))
    part = arrays.rows(3, 4)  # past the end: what is there
    assert part.lengths.tolist() == [3, 4] and part.speakers.tolist() == ["d", "e"]
    assert part.clean.tolist() == [[6, 7], [8, 9]] and part.noisy.tolist() == [[-6, -7], [-8, -9]]
    assert SplitArrays(clean=arrays.clean, noisy=arrays.noisy, lengths=arrays.lengths).rows(0, 1).speakers is None
