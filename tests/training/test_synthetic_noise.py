"""The synthetic rain-like noise generator (numpy only)."""

from __future__ import annotations

import numpy as np
import pytest

from training.synthetic_noise import SyntheticRainConfig, coloured_noise, droplets, swell, synthetic_rain

SR = 16000


@pytest.mark.parametrize("tilt", [-1.5, -1.0, 0.0, 0.5])
def test_coloured_noise_has_the_asked_spectral_slope_and_unit_rms(tilt: float) -> None:
    wave = coloured_noise(SR * 4, tilt, np.random.default_rng(0))
    assert np.sqrt(np.mean(wave**2)) == pytest.approx(1.0, rel=1e-6)
    power = np.abs(np.fft.rfft(wave)) ** 2
    bands = np.geomspace(20, power.shape[0] - 1, 12).astype(int)  # mean power in log-spaced bands
    centres = np.sqrt(bands[:-1] * bands[1:])
    means = np.array([power[a:b].mean() for a, b in zip(bands[:-1], bands[1:])])
    slope = np.polyfit(np.log(centres), np.log(means), 1)[0]
    assert slope == pytest.approx(tilt, abs=0.15)


def test_droplets_are_sparse_at_a_low_rate_and_dense_at_a_high_one() -> None:
    rng = np.random.default_rng(1)
    frame = SR // 100  # 10 ms

    def quiet_share(wave: np.ndarray) -> float:
        energy = (wave[: len(wave) // frame * frame].reshape(-1, frame) ** 2).sum(1)
        return float(np.mean(energy < 1e-4 * energy.max()))

    sparse = droplets(SR * 2, rate=20.0, decay=0.001, rng=rng)
    dense = droplets(SR * 2, rate=2000.0, decay=0.005, rng=rng)
    for wave in (sparse, dense):
        assert np.sqrt(np.mean(wave**2)) == pytest.approx(1.0, rel=1e-6)
    assert quiet_share(sparse) > 0.5 and quiet_share(dense) < 0.05
    assert not droplets(SR, rate=0.0, decay=0.001, rng=rng).any()  # no drop fell


def test_swell_stays_positive_within_its_depth() -> None:
    gain = swell(SR * 10, depth=0.8, hz=0.5, rng=np.random.default_rng(2))
    assert gain.min() >= 0.2 - 1e-9 and gain.max() <= 1.8 + 1e-9
    assert gain.max() - gain.min() > 0.5
    np.testing.assert_allclose(swell(SR, 0.0, 1.0, np.random.default_rng(2)), 1.0)


def test_synthetic_rain_is_unit_rms_finite_and_reproducible() -> None:
    a = synthetic_rain(SR * 2, np.random.default_rng(5))
    b = synthetic_rain(SR * 2, np.random.default_rng(5))
    c = synthetic_rain(SR * 2, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert np.isfinite(a).all() and np.sqrt(np.mean(a**2)) == pytest.approx(1.0, rel=1e-6)


def test_a_config_without_tilt_drops_or_swell_gives_white_noise() -> None:
    steady_white = SyntheticRainConfig(tilt_range=(0.0, 0.0), drop_level_db_range=(-60.0, -60.0), swell_depth_range=(0.0, 0.0))
    wave = synthetic_rain(SR * 4, np.random.default_rng(3), steady_white)
    halves = np.abs(np.fft.rfft(wave)) ** 2
    low, high = halves[: len(halves) // 2].mean(), halves[len(halves) // 2 :].mean()
    assert low / high == pytest.approx(1.0, rel=0.1)  # white: as much power low as high
