"""SI-SDR and the other metrics behave as their definitions say."""

from __future__ import annotations

import math

import numpy as np
import pytest

from denoise_core.signal import SignalSpec
from denoise_core.signal import load_mono
from training.evaluation import dnsmos as dnsmos_mod
from training.evaluation.metrics import METRICS, pesq_wb, score, seed_mse, si_sdr

SR = 16000


def _speechlike(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """A harmonic, amplitude-modulated signal: deterministic, non-trivial, zero-mean-ish."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 180.0 + 20.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    wave = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t) ** 2
    return (0.1 * wave * envelope + 1e-4 * rng.standard_normal(t.shape)).astype(np.float32)


def test_si_sdr_identical_is_very_high():
    x = _speechlike()
    assert si_sdr(x, x) > 100.0


def test_si_sdr_is_scale_invariant_and_ignores_dc():
    x = _speechlike()
    noise = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32) * 0.02
    est = x + noise
    base = si_sdr(x, est)
    assert si_sdr(x, 0.25 * est) == pytest.approx(base, abs=1e-6)
    assert si_sdr(x, 7.0 * est) == pytest.approx(base, abs=1e-6)
    assert si_sdr(x, est + 0.3) == pytest.approx(base, abs=1e-6)  # zero-mean: a DC offset is not distortion


def test_si_sdr_equals_snr_for_known_independent_noise():
    x = _speechlike(seconds=4.0)
    rng = np.random.default_rng(2)
    noise = rng.standard_normal(x.shape)
    noise -= noise.mean()
    noise -= np.dot(noise, x - x.mean()) / np.dot(x - x.mean(), x - x.mean()) * (x - x.mean())  # orthogonal to x
    for snr in (-5.0, 0.0, 10.0):
        scaled = noise * math.sqrt(np.sum((x - x.mean()) ** 2) / np.sum(noise**2) / 10 ** (snr / 10))
        assert si_sdr(x, x + scaled) == pytest.approx(snr, abs=1e-3)


def test_si_sdr_rejects_mismatched_lengths_and_silent_reference():
    with pytest.raises(ValueError):
        si_sdr(np.zeros(10), np.zeros(11))
    assert math.isnan(si_sdr(np.zeros(100), np.ones(100)))


def test_pesq_failure_is_nan_not_an_exception():
    silence = np.zeros(SR, dtype=np.float32)
    assert math.isnan(pesq_wb(silence, silence))


def test_seed_mse_zero_for_identical_and_positive_for_noise():
    spec = SignalSpec(n_fft=1199, hop_length=304, magnitude="db", output="magnitude").with_stats(-100.0, 40.0)
    x = _speechlike()
    assert seed_mse(x, x, spec) == 0.0
    noisy = x + np.random.default_rng(3).standard_normal(x.shape).astype(np.float32) * 0.05
    assert seed_mse(x, noisy, spec) > 0.001
    assert math.isnan(seed_mse(x, x, None))


def test_score_returns_every_metric():
    x = _speechlike(seconds=4.8)  # 4.5-5 s: a single DNSMOS window
    s = score(x, x + 0.01 * np.random.default_rng(4).standard_normal(x.shape).astype(np.float32))
    assert set(s) == set(METRICS) == {"si_sdr", "pesq", "stoi", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "seed_mse"}
    assert s["si_sdr"] > 10 and 0.5 < s["stoi"] <= 1.0 and math.isnan(s["seed_mse"])


def test_dnsmos_prefers_clean_speech_to_speech_in_white_noise(shared_data):
    """Real LibriSpeech speech scores higher DNSMOS than the same speech with 0 dB white noise."""
    if not dnsmos_mod.status()["available"]:
        pytest.skip(f"DNSMOS unavailable: {dnsmos_mod.status()['reason']}")
    f = sorted((shared_data / "LibriSpeech" / "dev-clean").rglob("*.flac"))[0]
    clean = load_mono(f, SR)[: int(4.8 * SR)]  # tiled to 9.6 s: one DNSMOS window, the cheapest length
    noise = np.random.default_rng(5).standard_normal(clean.shape)
    noisy = clean + noise * np.sqrt(np.mean(clean.astype(np.float64) ** 2) / np.mean(noise**2))  # 0 dB SNR
    noisy = (0.9 * noisy / np.abs(noisy).max()).astype(np.float32)
    a, b = dnsmos_mod.dnsmos(clean), dnsmos_mod.dnsmos(noisy)
    assert all(1.0 <= v <= 5.0 for v in (*a.values(), *b.values())), (a, b)
    assert a["dnsmos_ovrl"] > b["dnsmos_ovrl"] + 1.0, (a, b)
    assert a["dnsmos_bak"] > b["dnsmos_bak"] + 1.0, (a, b)
    # too short or silent: NaN, like PESQ
    assert all(math.isnan(v) for v in dnsmos_mod.dnsmos(clean[: SR // 2]).values())
    assert all(math.isnan(v) for v in dnsmos_mod.dnsmos(np.zeros(2 * SR, np.float32)).values())


def test_dnsmos_missing_package_is_nan_not_an_exception(monkeypatch):
    import sys

    monkeypatch.setattr(dnsmos_mod, "_state", {"scorer": None, "error": None, "version": None, "disabled": None})
    monkeypatch.setitem(sys.modules, "speechmos", None)
    monkeypatch.setitem(sys.modules, "speechmos.dnsmos", None)
    st = dnsmos_mod.status()
    assert st["available"] is False and "speechmos" in st["reason"]
    s = score(_speechlike(), _speechlike())
    assert all(math.isnan(s[k]) for k in dnsmos_mod.KEYS) and s["si_sdr"] > 100.0
