"""Synthetic rain-like noise for training: coloured hiss plus a train of droplet impacts.

The training split holds about two minutes of each noise category, and the recordings a
user sends are other recordings. Mixing a synthetic component under the real noise
widens what the network sees: a broadband hiss with a random spectral tilt (steady rain,
wind, microphone noise) and sparse decaying clicks at a random rate (drops on a surface),
under a slow random level swell (gusts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve

from denoise_core.signal import rms

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class SyntheticRainConfig:
    """Ranges the generator draws from (uniformly, the rate and decay log-uniformly)."""

    #: power spectrum slope of the hiss, in powers of frequency (-1 pink, 0 white)
    tilt_range: tuple[float, float] = (-1.5, 0.5)
    #: droplet impacts per second
    drop_rate_range: tuple[float, float] = (20.0, 2000.0)
    #: e-folding time of one impact's ring, in seconds
    drop_decay_range: tuple[float, float] = (0.0005, 0.01)
    #: level of the droplets against the hiss, in dB (RMS)
    drop_level_db_range: tuple[float, float] = (-20.0, 10.0)
    #: depth of the slow level swell (0 = steady), and its rate in Hz
    swell_depth_range: tuple[float, float] = (0.0, 0.8)
    swell_hz_range: tuple[float, float] = (0.1, 2.0)


def coloured_noise(n: int, tilt: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of ``n`` samples whose power spectrum follows ``f ** tilt``, unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.arange(spectrum.shape[0], dtype=np.float64), 1.0)
    wave = np.fft.irfft(spectrum * f ** (tilt / 2.0), n=n)
    return wave / rms(wave)


def droplets(n: int, rate: float, decay: float, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A Poisson train of impacts at ``rate`` per second with log-normal amplitudes and random signs,
    all ringing with one burst of white noise that decays with time constant ``decay`` seconds;
    unit RMS (zeros if none fell)."""
    impulses = np.zeros(n)
    count = rng.poisson(rate * n / sr)
    if count:
        impulses[rng.integers(0, n, count)] += rng.lognormal(0.0, 1.0, count) * rng.choice([-1.0, 1.0], count)
    t = np.arange(max(2, int(decay * sr * 6))) / sr
    ring = rng.standard_normal(t.shape[0]) * np.exp(-t / decay)
    wave = fftconvolve(impulses, ring)[:n]
    return wave / rms(wave)


def swell(n: int, depth: float, hz: float, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A slow positive gain curve ``1 + depth * s(t)`` with ``s`` a random-phase sinusoid mix in [-1, 1]."""
    t = np.arange(n) / sr
    s = np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi)) + 0.5 * np.sin(2 * np.pi * hz * 2.7 * t + rng.uniform(0, 2 * np.pi))
    return 1.0 + depth * s / 1.5


def synthetic_rain(n: int, rng: np.random.Generator, config: SyntheticRainConfig = SyntheticRainConfig(), sr: int = SAMPLE_RATE) -> np.ndarray:
    """``n`` samples of synthetic rain-like noise at unit RMS."""
    hiss = coloured_noise(n, rng.uniform(*config.tilt_range), rng)
    rate = np.exp(rng.uniform(*np.log(config.drop_rate_range)))
    decay = np.exp(rng.uniform(*np.log(config.drop_decay_range)))
    drops = droplets(n, rate, decay, rng, sr)
    wave = hiss + drops * 10 ** (rng.uniform(*config.drop_level_db_range) / 20)
    wave = wave * swell(n, rng.uniform(*config.swell_depth_range), rng.uniform(*config.swell_hz_range), rng, sr)
    return wave / rms(wave)
