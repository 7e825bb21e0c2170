"""The ideal masks: exact where nothing bounds them, and the band layout only loses detail above the linear bins."""

from __future__ import annotations

import numpy as np

from denoise_core.signal import SignalSpec, istft, stft
from training.evaluation.oracle import MASK_BOUND, capped, oracles

SPEC = SignalSpec(n_fft=512, hop_length=256, magnitude="compressed", compress_exponent=0.3, output="complex_mask")


def spectra(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(16000) / 16000
    clean = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    noisy = (clean + 0.1 * rng.standard_normal(t.size)).astype(np.float32)
    return clean, noisy, stft(clean, SPEC), stft(noisy, SPEC)


def test_capped_keeps_the_phase_and_bounds_the_magnitude() -> None:
    mask = np.array([0.5 + 0.5j, 3.0 - 4.0j, 0.0j])
    out = capped(mask, 0.9)
    np.testing.assert_allclose(out[[0, 2]], mask[[0, 2]])
    assert np.isclose(abs(out[1]), 0.9)
    np.testing.assert_allclose(np.angle(out[1]), np.angle(mask[1]))


def test_ideal_masks_recover_the_clean_signal_as_far_as_their_bounds_allow() -> None:
    clean_wave, noisy_wave, clean, noisy = spectra()
    masks = oracles(SPEC)
    estimate = {name: istft(f(clean, noisy) * noisy, SPEC, len(noisy_wave)) for name, f in masks.items()}
    error = {name: np.sqrt(np.mean((e - clean_wave) ** 2)) for name, e in estimate.items()}
    noise = np.sqrt(np.mean((noisy_wave - clean_wave) ** 2))
    # the complex mask is exact wherever |S| < |X|; capping at MASK_BOUND leaves a small error
    assert error["complex"] < 0.1 * noise
    # through the bands: detail above the 65 linear bins is averaged, the linear bins stay exact
    low = slice(0, 65)
    ideal, banded = masks["complex"](clean, noisy), masks["complex-bands"](clean, noisy)
    np.testing.assert_allclose(banded[low], capped(ideal[low], MASK_BOUND), atol=1e-5)
    assert np.abs(banded[65:] - ideal[65:]).max() > 1e-3
    # all three clean up the mixture; the noisy-phase magnitude mask the least
    assert error["complex"] <= error["complex-bands"] < error["magnitude"] < noise
