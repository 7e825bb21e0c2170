"""The on-the-fly mixer and its noise augmentations (numpy only, no training)."""

from __future__ import annotations

import numpy as np
import pytest

from denoise_core.signal import SignalSpec, snr_db
from training.datasets import MixerConfig, OnTheFlyMixer, SplitArrays, change_speed, random_equaliser, speaker_weights

SR = 16000
SPEC = SignalSpec(n_fft=512, hop_length=256, magnitude="compressed", compress_exponent=0.3, output="mask", norm_min=0.0, norm_max=10.0)


def tone(freq: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return np.sin(2 * np.pi * freq * t)


def peak_hz(wave: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.argmax(spectrum) * SR / len(wave))


@pytest.mark.parametrize("factor", [0.8, 1.0, 1.25, 2.0])
def test_change_speed_scales_length_and_pitch(factor: float) -> None:
    out = change_speed(tone(1000.0), factor)
    assert len(out) == round(SR / factor)
    assert peak_hz(out) == pytest.approx(1000.0 * factor, rel=0.01)


def test_equaliser_without_gain_is_identity_and_bounded_with_gain() -> None:
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(SR)
    np.testing.assert_allclose(random_equaliser(noise, np.random.default_rng(1), 0.0, 6), noise, atol=1e-9)
    shaped = random_equaliser(noise, np.random.default_rng(1), 8.0, 6)
    ratio_db = 20 * np.log10(np.abs(np.fft.rfft(shaped))[1:] / np.abs(np.fft.rfft(noise))[1:])
    assert ratio_db.max() <= 8.0 + 1e-6 and ratio_db.min() >= -8.0 - 1e-6
    assert ratio_db.max() - ratio_db.min() > 1.0  # it does change the colour


def test_mixer_options_are_checked() -> None:
    cfg = MixerConfig.from_options(2.0, {"speed_range": [0.9, 1.1], "eq_prob": 1.0})
    assert cfg.crop_seconds == 2.0 and cfg.speed_range == (0.9, 1.1) and cfg.eq_prob == 1.0
    with pytest.raises(ValueError, match="unknown mixer options"):
        MixerConfig.from_options(2.0, {"snr_hi": 3})


@pytest.mark.parametrize("augment", [0.0, 1.0])
def test_mixer_items_hold_their_snr_range_with_and_without_augmentation(augment: float) -> None:
    rng = np.random.default_rng(0)
    lengths = np.array([SR * 4, SR * 2, SR * 5])
    clean = np.zeros((3, SR * 5), dtype=np.float32)
    for i, n in enumerate(lengths):
        clean[i, :n] = 0.1 * tone(200.0 + 100 * i, n / SR) * (1 + 0.5 * np.sin(np.arange(n) / 800))
    speech = SplitArrays(clean=clean, noisy=clean.copy(), lengths=lengths)
    noise = rng.standard_normal((4, SR * 5)).astype(np.float32)
    cfg = MixerConfig(crop_seconds=1.0, snr_low=-5.0, snr_high=10.0, speed_prob=augment, eq_prob=augment,
                      speech_speed_prob=augment, speech_eq_prob=augment)
    mixer = OnTheFlyMixer(speech, noise, SPEC, batch_size=2, seed=3, config=cfg)
    for _ in range(20):
        noisy, target = mixer.item()
        assert noisy.shape == target.shape == (mixer.length,)
        assert np.isfinite(noisy).all() and np.abs(noisy).max() <= 0.99 + 1e-6
        assert -5.0 - 1e-3 <= snr_db(target, noisy - target) <= 10.0 + 1e-3


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speech_speed_augmentation_moves_the_target_pitch_and_keeps_the_crop_length(factor: float) -> None:
    speech = _one_voice()
    noise = np.random.default_rng(0).standard_normal((2, SR * 3)).astype(np.float32)
    cfg = MixerConfig(crop_seconds=1.0, snr_low=30.0, snr_high=30.0, speech_speed_prob=1.0, speech_speed_range=(factor, factor))
    mixer = OnTheFlyMixer(speech, noise, SPEC, batch_size=1, seed=0, config=cfg)
    _, target = mixer.item()
    assert target.shape == (mixer.length,)
    assert peak_hz(target) == pytest.approx(400.0 * factor, rel=0.02)


def _one_voice(seconds: float = 3.0) -> SplitArrays:
    clean = (0.1 * tone(400.0, seconds))[None].astype(np.float32)
    return SplitArrays(clean=clean, noisy=clean.copy(), lengths=np.array([clean.shape[1]]))


def test_noise_crops_are_circular_windows_of_one_clip_even_when_the_clip_is_shorter() -> None:
    clips = np.random.default_rng(0).standard_normal((2, SR // 2))  # half the crop: the window wraps
    mixer = OnTheFlyMixer(_one_voice(), clips, SPEC, batch_size=1, seed=1,
                          config=MixerConfig(crop_seconds=1.0, speed_prob=0.0, eq_prob=0.0))
    steps = np.arange(mixer.length)
    for _ in range(10):
        crop = mixer._noise_clip()
        assert crop.shape == (mixer.length,)
        found = [
            sign
            for candidate in (crop, crop[::-1])
            for sign in (1.0, -1.0)
            for clip in clips
            for start in np.flatnonzero(clip == sign * candidate[0])
            if np.array_equal(clip[(start + steps) % len(clip)], sign * candidate)
        ]
        assert found, "the crop is not a (reversed, sign-flipped) window of a clip"


@pytest.mark.parametrize("factor", [0.8, 1.25])
def test_noise_speed_augmentation_moves_the_pitch_and_keeps_the_crop_length(factor: float) -> None:
    cfg = MixerConfig(crop_seconds=1.0, speed_prob=1.0, speed_range=(factor, factor), eq_prob=0.0)
    mixer = OnTheFlyMixer(_one_voice(), tone(1000.0, 3.0)[None], SPEC, batch_size=1, seed=0, config=cfg)
    crop = mixer._noise_clip()
    assert crop.shape == (mixer.length,)
    assert peak_hz(crop) == pytest.approx(1000.0 * factor, rel=0.02)


@pytest.mark.parametrize("balance, share_of_big", [(0.0, 0.9), (0.5, 0.75), (1.0, 0.5)])
def test_speaker_balance_shifts_draws_from_the_speaker_who_holds_most_segments(balance: float, share_of_big: float) -> None:
    # speaker 7 holds 9 segments, speaker 8 one; segment i is a tone of 100 * (i + 1) Hz
    clean = np.stack([0.1 * tone(100.0 * (i + 1)) for i in range(10)]).astype(np.float32)
    speakers = np.array([7] * 9 + [8])
    arrays = SplitArrays(clean=clean, noisy=clean.copy(), lengths=np.full(10, SR), speakers=speakers)
    weights = speaker_weights(arrays, balance)
    assert (weights is None) == (balance == 0.0)  # no weighting: every segment equally likely
    expected = 9 / (9 + 9**balance)  # 9 segments of weight 9**-b against one of weight 1
    assert expected == pytest.approx(share_of_big, abs=0.01)
    if weights is not None:
        assert weights[:9].sum() == pytest.approx(expected)
    mixer = OnTheFlyMixer(arrays, np.zeros((1, SR)), SPEC, batch_size=1, seed=0,
                          config=MixerConfig(crop_seconds=1.0, speaker_balance=balance))
    draws = [peak_hz(mixer._speech_crop(SR)) for _ in range(2000)]
    assert np.mean(np.isclose(draws, 1000.0, atol=5.0)) == pytest.approx(1 - expected, abs=0.03)


@pytest.mark.parametrize("prob", [0.0, 1.0])
def test_synthetic_noise_goes_under_the_real_noise_only_when_asked(prob: float) -> None:
    cfg = MixerConfig(crop_seconds=1.0, speed_prob=0.0, eq_prob=0.0, second_noise_prob=0.0,
                      synthetic_noise_prob=prob, synthetic_level_db=(0.0, 0.0))
    mixer = OnTheFlyMixer(_one_voice(), tone(1000.0, 3.0)[None], SPEC, batch_size=1, seed=0, config=cfg)
    for _ in range(5):
        noise = mixer._noise()
        spectrum = np.abs(np.fft.rfft(noise)) ** 2
        hz = np.fft.rfftfreq(len(noise), 1 / SR)
        off_tone = spectrum[np.abs(hz - 1000.0) > 50].sum() / spectrum.sum()
        if prob == 0.0:
            assert off_tone < 0.01  # the tone alone
        else:  # synthetic noise at the tone's level: about half the energy lies elsewhere
            assert 0.3 < off_tone < 0.7


def test_speaker_balance_is_checked() -> None:
    arrays = _one_voice()
    with pytest.raises(ValueError, match="speaker of each segment"):
        speaker_weights(arrays, 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        speaker_weights(SplitArrays(arrays.clean, arrays.noisy, arrays.lengths, speakers=np.array([1])), 1.5)


@pytest.mark.parametrize("balance", [0.0, 0.5, 1.0])
def test_noise_balance_draws_a_recording_cut_into_many_clips_less_often(balance: float) -> None:
    # recording "a" is cut into 9 clips (a 500 Hz tone), recording "b" into one (a 2 kHz tone)
    noise = np.stack([tone(500.0, 2.0)] * 9 + [tone(2000.0, 2.0)])
    sources = np.array(["rain:a"] * 9 + ["rain:b"])
    cfg = MixerConfig(crop_seconds=1.0, speed_prob=0.0, eq_prob=0.0, noise_balance=balance)
    mixer = OnTheFlyMixer(_one_voice(), noise, SPEC, batch_size=1, seed=0, config=cfg, noise_sources=sources)
    share_of_b = 9**balance / (9 + 9**balance)  # one clip of weight 1 against 9 of weight 9**-b
    draws = [peak_hz(mixer._noise_clip()) for _ in range(2000)]
    assert np.mean(np.isclose(draws, 2000.0, atol=20.0)) == pytest.approx(share_of_b, abs=0.03)


def test_noise_balance_needs_each_clip_source_and_a_balance_in_range() -> None:
    noise = np.stack([tone(500.0, 2.0)] * 2)
    with pytest.raises(ValueError, match="source recording of each noise clip"):
        OnTheFlyMixer(_one_voice(), noise, SPEC, batch_size=1, seed=0, config=MixerConfig(crop_seconds=1.0, noise_balance=0.5))
    with pytest.raises(ValueError, match="source recording of each noise clip"):
        OnTheFlyMixer(_one_voice(), noise, SPEC, batch_size=1, seed=0, config=MixerConfig(crop_seconds=1.0, noise_balance=0.5),
                      noise_sources=np.array(["rain:a"]))
    with pytest.raises(ValueError, match=r"noise_balance must lie in \[0, 1\]"):
        OnTheFlyMixer(_one_voice(), noise, SPEC, batch_size=1, seed=0, config=MixerConfig(crop_seconds=1.0, noise_balance=2.0),
                      noise_sources=np.array(["rain:a", "rain:b"]))
