"""The training loss terms on real signals: SI-SDR and the multi-resolution compressed spectral loss."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.training

import tensorflow as tf  # noqa: E402

from training.graph import mag_loss, negative_si_sdr_loss, wave_loss  # noqa: E402
from training.losses import compressed_spectral_loss, si_sdr  # noqa: E402


@pytest.fixture(scope="module")
def speech_like() -> np.ndarray:
    """Two seconds of a voiced-like harmonic signal with a syllable envelope, two items."""
    t = np.arange(32000) / 16000
    wave = sum(np.sin(2 * np.pi * 180 * k * t + k) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    return np.stack([wave, np.roll(wave, 3000)]).astype(np.float32) * 0.1


def spectral(clean: np.ndarray, estimate: np.ndarray, **kwargs) -> np.ndarray:
    return compressed_spectral_loss(tf.constant(clean), tf.constant(estimate), **kwargs).numpy()


def test_spectral_loss_is_zero_only_for_the_clean_signal(speech_like: np.ndarray) -> None:
    noise = np.random.default_rng(0).normal(0, 0.01, speech_like.shape).astype(np.float32)
    assert np.all(spectral(speech_like, speech_like) < 1e-6)
    assert np.all(spectral(speech_like, speech_like + noise) > 1e-3)


def test_spectral_loss_does_not_depend_on_the_level(speech_like: np.ndarray) -> None:
    estimate = speech_like * 0.7 + np.random.default_rng(1).normal(0, 0.01, speech_like.shape).astype(np.float32)
    np.testing.assert_allclose(spectral(speech_like, estimate), spectral(10 * speech_like, 10 * estimate), rtol=1e-3)


def test_the_complex_term_sees_phase_that_the_magnitude_term_misses(speech_like: np.ndarray) -> None:
    flipped = -speech_like  # same magnitudes, every phase turned by pi
    assert np.all(spectral(speech_like, flipped, complex_share=0.0) < 1e-6)
    assert np.all(spectral(speech_like, flipped, complex_share=0.3) > 0.1)


def test_combined_wave_loss_adds_the_weighted_spectral_term(speech_like: np.ndarray) -> None:
    clean = tf.constant(speech_like)
    estimate = tf.constant(speech_like * 0.8 + np.random.default_rng(2).normal(0, 0.02, speech_like.shape).astype(np.float32))
    combined = wave_loss("si_sdr+spectral", 50.0)(clean, estimate).numpy()
    expected = -si_sdr(clean, estimate).numpy() + 50.0 * compressed_spectral_loss(clean, estimate).numpy()
    np.testing.assert_allclose(combined, expected, rtol=1e-5)
    assert wave_loss("si_sdr") is negative_si_sdr_loss
    with pytest.raises(ValueError, match="unknown wave loss"):
        wave_loss("l1")


def test_overshoot_weighs_residual_noise_and_not_missing_speech(speech_like: np.ndarray) -> None:
    """overshoot > 1 raises the loss of an estimate louder than the speech, not of a quieter one."""
    louder, quieter = speech_like * 1.5, speech_like * 0.5
    mags_only = {"complex_share": 0.0}
    np.testing.assert_allclose(spectral(speech_like, quieter, overshoot=4.0, **mags_only),
                               spectral(speech_like, quieter, **mags_only), rtol=1e-5)
    np.testing.assert_allclose(spectral(speech_like, louder, overshoot=4.0, **mags_only),
                               4.0 * spectral(speech_like, louder, **mags_only), rtol=1e-4)
    overshoot_loss = wave_loss("si_sdr+spectral", 50.0, overshoot=4.0)(tf.constant(speech_like), tf.constant(louder)).numpy()
    plain_loss = wave_loss("si_sdr+spectral", 50.0)(tf.constant(speech_like), tf.constant(louder)).numpy()
    assert np.all(overshoot_loss > plain_loss)


def test_the_magnitude_mse_weighs_overshoot_the_same_way() -> None:
    clean = tf.constant(np.full((1, 4, 3, 1), 0.5, np.float32))
    above, below = clean + 0.1, clean - 0.1
    assert mag_loss() == "mse"
    weighted = mag_loss(3.0)
    np.testing.assert_allclose(weighted(clean, above).numpy(), 3.0 * 0.01, rtol=1e-4)
    np.testing.assert_allclose(weighted(clean, below).numpy(), 0.01, rtol=1e-4)
