"""Min-max statistics of the seed recipe's dB spectrogram features."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from denoise_core.signal import SignalSpec, wave_features

#: The seed recipe's STFT: 600 frequency bins x 264 frames for 5 s at 16 kHz.
SEED_SPEC = SignalSpec(n_fft=1199, hop_length=304, magnitude="db")


def feature_min_max(arrays: Iterable[np.ndarray], spec: SignalSpec = SEED_SPEC, batch: int = 32) -> tuple[float, float]:
    """Min and max of ``wave_features`` over every row of every ``(N, samples)`` array."""
    lo, hi = np.inf, -np.inf
    for waves in arrays:
        for i in range(0, waves.shape[0], batch):
            feats = wave_features(waves[i : i + batch], spec)
            lo, hi = min(lo, float(feats.min())), max(hi, float(feats.max()))
    if not np.isfinite(lo):
        raise ValueError("no audio to compute statistics on")
    return lo, hi
