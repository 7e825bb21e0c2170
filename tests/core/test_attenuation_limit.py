"""The strength control of the signal path: ``enhance_audio(..., attenuation_limit_db=X)``."""

from __future__ import annotations

import numpy as np
import pytest

from denoise_core import signal as S

MASK = S.SignalSpec(output="mask", frame_multiple=4)
COMPLEX = S.SignalSpec(output="complex_mask", frame_multiple=4)


def sigmoid_mask(batch: np.ndarray) -> np.ndarray:
    """A mask that depends on the input, like a real network's."""
    return 1.0 / (1.0 + np.exp(-(4.0 * batch[..., :1] - 6.0)))


def removes_everything(spec: S.SignalSpec) -> S.Predict:
    return lambda batch: np.zeros(batch.shape[:-1] + (spec.output_channels,), dtype=np.float32)


def noisy(sr: int, channels: int, seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(sr + channels)
    t = np.arange(int(sr * seconds)) / sr
    cols = [0.3 * np.sin(2 * np.pi * (220 + 110 * c) * t) + rng.normal(0, 0.05, t.shape) for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


def test_no_limit_is_the_unlimited_path_exactly() -> None:
    x = noisy(16000, 1)
    current = np.clip(S.enhance_long(x[:, 0], MASK, sigmoid_mask), -1.0, 1.0)[:, np.newaxis]
    for out in (S.enhance_audio(x, 16000, MASK, sigmoid_mask),
                S.enhance_audio(x, 16000, MASK, sigmoid_mask, attenuation_limit_db=None)):
        assert out.dtype == np.float32 and np.array_equal(out, current)


@pytest.mark.parametrize("sr,channels", [(16000, 1), (44100, 2)])
def test_zero_db_returns_the_input(sr: int, channels: int) -> None:
    x = noisy(sr, channels)
    out = S.enhance_audio(x, sr, MASK, sigmoid_mask, attenuation_limit_db=0.0)
    assert out.shape == x.shape
    np.testing.assert_allclose(out, x, atol=1e-6, rtol=0)


@pytest.mark.parametrize("db", [3.0, 10.0, 30.0])
@pytest.mark.parametrize("sr", [16000, 22050])
def test_between_it_mixes_the_input_back_at_its_own_rate(db: float, sr: int) -> None:
    x = noisy(sr, 2)
    full = S.enhance_audio(x, sr, MASK, sigmoid_mask)
    g = 10 ** (-db / 20)
    out = S.enhance_audio(x, sr, MASK, sigmoid_mask, attenuation_limit_db=db)
    np.testing.assert_allclose(out, np.clip((1 - g) * full + g * x, -1, 1), atol=1e-6, rtol=0)


@pytest.mark.parametrize("spec", [MASK, COMPLEX], ids=["mask", "complex_mask"])
@pytest.mark.parametrize("db", [6.0, 12.0, 20.0])
def test_a_model_that_removes_everything_leaves_the_input_x_db_down(spec: S.SignalSpec, db: float) -> None:
    x = noisy(44100, 1)
    out = S.enhance_audio(x, 44100, spec, removes_everything(spec), attenuation_limit_db=db)
    np.testing.assert_allclose(out, x * 10 ** (-db / 20), atol=1e-6, rtol=0)
    assert S.snr_db(x, out) == pytest.approx(db, abs=1e-3)  # the noise is X dB down, and no further


@pytest.mark.parametrize("bad", [-1.0, -1e-9, float("nan")])
def test_negative_or_nan_limits_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="attenuation_limit_db"):
        S.enhance_audio(noisy(16000, 1), 16000, MASK, sigmoid_mask, attenuation_limit_db=bad)
