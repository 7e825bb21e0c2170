"""The PESQ-style perceptual loss: its Bark bands, what it rises with, and its gradients."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.training

import tensorflow as tf  # noqa: E402

from training.graph import wave_loss  # noqa: E402
from training.losses import si_sdr  # noqa: E402
from training.perceptual_loss import BANDS, bark, bark_bands, perceptual_loss  # noqa: E402
from training.train import parse_args  # noqa: E402


@pytest.fixture(scope="module")
def speech_like() -> np.ndarray:
    """Two seconds of a voiced-like harmonic signal with a syllable envelope and pauses, two items."""
    t = np.arange(32000) / 16000
    envelope = np.clip(np.sin(2 * np.pi * 2 * t), 0.0, None) ** 2
    wave = sum(np.sin(2 * np.pi * 180 * k * t + k) / k for k in range(1, 20)) * envelope
    return np.stack([wave, np.roll(wave, 3000)]).astype(np.float32) * 0.1


def noise_like(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, shape).astype(np.float32)


def at_snr(clean: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    scale = np.sqrt(np.mean(clean**2, axis=-1, keepdims=True) / np.mean(noise**2, axis=-1, keepdims=True)) * 10 ** (-snr_db / 20)
    return (clean + scale * noise).astype(np.float32)


def loss(clean: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    return perceptual_loss(tf.constant(clean), tf.constant(estimate)).numpy()


def test_every_bin_lies_in_one_band_of_increasing_bark_span() -> None:
    member, width, threshold = bark_bands()
    assert member.shape == (257, BANDS)
    np.testing.assert_array_equal(member.sum(axis=1), 1.0)
    first_bin = np.argmax(member, axis=0)
    assert np.all(np.diff(first_bin) > 0)
    assert width.sum() == pytest.approx(bark(8000 + 15.625) - bark(0), rel=1e-3)
    # the ear is most sensitive between 2 and 5 kHz, least so at the lowest band
    centre_hz = first_bin * 16000 / 512
    assert 2000 < centre_hz[np.argmin(threshold / member.sum(axis=0))] < 5000
    assert np.argmax(threshold) == 0


def test_zero_for_the_clean_signal_and_rising_as_the_noise_rises(speech_like: np.ndarray) -> None:
    noise = noise_like(speech_like.shape)
    values = [loss(speech_like, at_snr(speech_like, noise, snr)) for snr in (30, 15, 5, -5)]
    assert np.all(loss(speech_like, speech_like) < 1e-4)
    assert np.all(values[0] > 1e-3)
    assert np.all(np.diff(np.stack(values), axis=0) > 0)


def test_missing_high_bands_cost_more_the_more_is_cut(speech_like: np.ndarray) -> None:
    """Low-passed estimates (no noise): the loss rises as the cut-off falls."""
    spectrum = np.fft.rfft(speech_like, axis=-1)

    def low_passed(hz: float) -> np.ndarray:
        cut = spectrum.copy()
        cut[:, int(hz / 16000 * speech_like.shape[-1]):] = 0
        return np.fft.irfft(cut, speech_like.shape[-1]).astype(np.float32)

    values = np.stack([loss(speech_like, low_passed(hz)) for hz in (3000, 1500, 700)])
    assert np.all(values[0] > 1e-3)
    assert np.all(np.diff(values, axis=0) > 0)


def test_it_does_not_depend_on_either_level(speech_like: np.ndarray) -> None:
    estimate = at_snr(speech_like, noise_like(speech_like.shape, 2), 10)
    np.testing.assert_allclose(loss(speech_like, estimate), loss(3 * speech_like, 0.2 * estimate), rtol=1e-3)


def test_added_noise_weighs_more_than_the_same_loss_of_speech(speech_like: np.ndarray) -> None:
    """The asymmetry factor: noise added where speech pauses costs more than the speech's own
    power taken out there, although both change the signal by the same waveform."""
    noise = noise_like(speech_like.shape, 3) * 0.02
    added = speech_like + noise * (np.abs(speech_like) < 1e-3)
    removed_clean = speech_like + noise * (np.abs(speech_like) < 1e-3)  # speech with the noise in it ...
    assert np.all(loss(speech_like, added) > 1.5 * loss(removed_clean, speech_like))  # ... against its noiseless form


def test_gradients_are_finite_for_near_silent_and_noisy_estimates(speech_like: np.ndarray) -> None:
    clean = tf.constant(speech_like)
    for start in (tf.constant(1e-6 * noise_like(speech_like.shape, 6)), tf.constant(at_snr(speech_like, noise_like(speech_like.shape, 4), 0))):
        estimate = tf.Variable(start)
        with tf.GradientTape() as tape:
            value = tf.reduce_sum(perceptual_loss(clean, estimate))
        grad = tape.gradient(value, estimate).numpy()
        assert np.all(np.isfinite(grad)) and np.any(grad != 0)


def test_the_wave_loss_adds_it_with_its_weight_to_either_kind(speech_like: np.ndarray) -> None:
    clean = tf.constant(speech_like)
    estimate = tf.constant(at_snr(speech_like, noise_like(speech_like.shape, 5), 5))
    term = perceptual_loss(clean, estimate).numpy()
    np.testing.assert_allclose(wave_loss("si_sdr", perceptual_weight=20.0)(clean, estimate).numpy(),
                               -si_sdr(clean, estimate).numpy() + 20.0 * term, rtol=1e-5)
    with_spectral = wave_loss("si_sdr+spectral", 50.0, perceptual_weight=20.0)(clean, estimate).numpy()
    np.testing.assert_allclose(with_spectral - wave_loss("si_sdr+spectral", 50.0)(clean, estimate).numpy(), 20.0 * term, rtol=1e-4)


def test_the_weight_is_recorded_and_off_unless_given() -> None:
    base = ["--data", "d", "--out", "o", "--preset", "band-offline-df"]
    assert parse_args(base).perceptual_weight == 0.0
    assert parse_args([*base, "--perceptual-weight", "20"]).perceptual_weight == 20.0
