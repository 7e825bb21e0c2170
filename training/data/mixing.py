"""Speech + noise mixtures, reproducible from a random generator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np

from denoise_core.signal import fit_length, mix_at_snr, rms, snr_db

MixMode = Literal["reference", "snr"]

#: SNRs (dB) that validation and test cycle through, so evaluation can report per SNR.
EVAL_SNRS: tuple[float, ...] = (-5.0, 0.0, 5.0, 10.0)


@dataclass(frozen=True)
class Mixture:
    clean: np.ndarray  # speech zero-padded to the clip length
    noisy: np.ndarray  # clean + scaled noise over the whole clip
    noise_index: int  # row in the split's noise pool
    snr_db: float


def target_snr(
    mode: MixMode,
    split: str,
    index: int,
    rng: np.random.Generator,
    snr_range: tuple[float, float],
    eval_snrs: Sequence[float] = EVAL_SNRS,
) -> float | None:
    """SNR to mix at: None in reference mode; uniform in ``snr_range`` for train; cycled otherwise."""
    if mode == "reference":
        return None
    if split == "train":
        return float(rng.uniform(snr_range[0], snr_range[1]))
    return float(eval_snrs[index % len(eval_snrs)])


def mix(
    speech: np.ndarray,
    pool: np.ndarray,
    rng: np.random.Generator,
    clip_samples: int,
    snr: float | None,
) -> Mixture:
    """Mix ``speech`` (at most ``clip_samples`` long) with a random clip of ``pool``.

    The noise clip is chosen at random and tiled from a random offset to the clip
    length. ``snr=None`` is the reference recipe (noise/2, the measured SNR is
    reported); otherwise the noise is scaled so the SNR over the speech's real,
    unpadded length is ``snr``.
    """
    length = speech.shape[0]
    k = int(rng.integers(pool.shape[0]))
    offset = int(rng.integers(pool.shape[1]))
    noise = fit_length(pool[k], clip_samples, offset)
    if snr is None:
        scaled = (noise * 0.5).astype(np.float32)
        measured = snr_db(speech, scaled[:length])
    else:
        head = noise[:length]
        _, scaled_head = mix_at_snr(speech, head, snr)
        scaled = (noise * (rms(scaled_head) / rms(head))).astype(np.float32)
        measured = float(snr)
    clean = np.zeros(clip_samples, dtype=np.float32)
    clean[:length] = speech
    return Mixture(clean=clean, noisy=(clean + scaled).astype(np.float32), noise_index=k, snr_db=measured)
