"""Fixed delays are measured by cross-correlation and undone before scoring."""

from __future__ import annotations

import numpy as np
import pytest

from denoise_core.signal import load_mono
from training.evaluation.metrics import si_sdr
from training.evaluation.systems import System, compensate, make_peer, measure_delay, xcorr_lag

SR = 16000


def _speech(shared_data, seconds: float = 2.0) -> np.ndarray:
    f = sorted((shared_data / "LibriSpeech" / "dev-clean").rglob("*.flac"))[0]
    return load_mono(f, SR)[: int(seconds * SR)]


class Delayed(System):
    """A synthetic 'denoiser' that delays its input by ``lag`` samples and scales it."""

    def __init__(self, lag: int) -> None:
        super().__init__(name="delayed", label="delayed")
        self.lag = lag

    def _process(self, wave: np.ndarray) -> np.ndarray:
        return 0.8 * np.concatenate([np.zeros(self.lag, np.float32), wave])[: wave.shape[0]]


@pytest.mark.parametrize("lag", [0, 1, 123, 480, 1000])
def test_delay_is_measured_and_undone(shared_data, lag):
    x = _speech(shared_data)
    system = Delayed(lag)
    measured, lags = measure_delay(system.raw, [x])
    assert measured == lag and lags == [lag]
    assert si_sdr(x, system.raw(x)) < 0 if lag >= 123 else True  # uncompensated, a large lag ruins the score
    system.calibrate([x])
    assert system.delay == lag and system.tail_pad == lag
    out = system.run(x)
    assert out.shape == x.shape
    assert si_sdr(x, out) > 60.0  # delay undone, the whole signal kept (tail padded)
    assert system.describe()["cpu_s_per_audio_s"] >= 0.0


def test_negative_lag_and_compensate_shapes():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(4000).astype(np.float32)
    early = x[7:]
    assert xcorr_lag(early, x, 100) == -7
    back = compensate(early, -7, x.shape[0])
    np.testing.assert_array_equal(back[7:], x[7:])
    assert compensate(x, 10, 50).shape == (50,)
    assert compensate(x[:20], 0, 50).shape == (50,)


@pytest.mark.parametrize("name, expected", [("rnnoise", 320), ("deepfilternet", 480)])
def test_real_peer_delays(shared_data, name, expected):
    """RNNoise (20 ms) and DeepFilterNet 3 (30 ms, n_fft - hop + 2 lookahead frames at 48 kHz) as measured."""
    peer = make_peer(name)
    if not peer.available:
        pytest.skip(f"{name} unavailable: {peer.reason}")
    x = _speech(shared_data, seconds=1.5)
    measured, _ = measure_delay(peer.raw, [x])
    assert measured == expected


def test_unavailable_peer_is_reported_not_raised(monkeypatch):
    from training.evaluation import systems

    class Broken(System):
        def __init__(self) -> None:
            raise ImportError("no module named 'broken'")

    monkeypatch.setitem(systems.PEER_CLASSES, "rnnoise", Broken)
    peer = make_peer("rnnoise")
    assert not peer.available and "ImportError" in peer.reason
    assert peer.describe()["available"] is False
    with pytest.raises(ValueError):
        make_peer("nonexistent")
