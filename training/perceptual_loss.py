"""A differentiable loss shaped like PESQ's disturbance model (after PMSQE, Martin-Doñas et al. 2018).

Both waveforms are brought to unit RMS (PESQ aligns levels too), turned into power
spectra (512-point STFT, hop 256), summed into Bark bands and mapped to loudness with
Zwicker's law above an absolute hearing threshold. The loudness difference, after PESQ's
centre clipping (a quarter of the smaller loudness is masked), gives two per-frame
disturbances: a symmetric one (Bark-width-weighted L2 norm) and an asymmetric one
(weighted L1 norm times PESQ's asymmetry factor, which counts only added energy such as
residual noise). The loss is PESQ's weighted sum of the two, averaged over frames, so a
unit of it is roughly one MOS point that PESQ would take off.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import tensorflow as tf

from training.losses import stft, unit_rms

N_FFT = 512
HOP = 256
SAMPLE_RATE = 16000
#: Bark bands over 0-8 kHz, as in wideband PESQ
BANDS = 49
#: Zwicker's loudness exponent
ZWICKER_POWER = 0.23
#: the level (dB SPL) that a unit-RMS signal plays at, which places the hearing threshold
LISTENING_LEVEL_DB = 45.0
#: PESQ's weights of the symmetric and asymmetric disturbances
SYMMETRIC_WEIGHT = 0.1
ASYMMETRIC_WEIGHT = 0.0309


def bark(hz: np.ndarray) -> np.ndarray:
    """Traunmüller's Bark scale."""
    hz = np.asarray(hz, dtype=np.float64)
    return 26.81 * hz / (1960.0 + hz) - 0.53


def hearing_threshold_db(hz: np.ndarray) -> np.ndarray:
    """Terhardt's absolute threshold of hearing in dB SPL (``hz`` floored at 20 Hz)."""
    khz = np.maximum(np.asarray(hz, dtype=np.float64), 20.0) / 1000.0
    return 3.64 * khz**-0.8 - 6.5 * np.exp(-0.6 * (khz - 3.3) ** 2) + 1e-3 * khz**4


@lru_cache(maxsize=4)
def bark_bands(n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE, bands: int = BANDS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(bins, bands')`` 0/1 membership matrix, each band's Bark width and hearing threshold.

    Bins are split evenly on the Bark scale into ``bands`` bands (at the defaults the lowest
    bands hold one bin each); a band that would hold no bin is dropped. The threshold is the
    band's power, on the scale of a unit-RMS signal's white-noise bin power, at Terhardt's
    threshold relative to :data:`LISTENING_LEVEL_DB`.
    """
    n_freq = n_fft // 2 + 1
    hz = np.arange(n_freq) * sample_rate / n_fft
    z = bark(hz)
    index = np.minimum(((z - z[0]) / (z[-1] - z[0]) * bands).astype(int), bands - 1)
    used = np.unique(index)
    member = (index[:, None] == used[None, :]).astype(np.float32)
    half = sample_rate / n_fft / 2.0
    lo = np.array([hz[index == b].min() for b in used]) - half
    hi = np.array([hz[index == b].max() for b in used]) + half
    width = (bark(hi) - bark(np.maximum(lo, 0.0))).astype(np.float32)
    bin_power = np.sum(np.hanning(n_fft + 1)[:-1] ** 2)  # a unit-variance white bin's expected power
    centre = (lo + hi) / 2.0
    threshold = member.sum(axis=0) * bin_power * 10.0 ** ((hearing_threshold_db(centre) - LISTENING_LEVEL_DB) / 10.0)
    return member, width, threshold.astype(np.float32)


def _bark_power(wave: tf.Tensor, member: tf.Tensor) -> tf.Tensor:
    """``(batch, frames, bands)`` Bark-band powers of a unit-RMS version of ``(batch, samples)`` waves."""
    spectrum = stft(unit_rms(wave), N_FFT, HOP)
    power = tf.square(tf.math.real(spectrum)) + tf.square(tf.math.imag(spectrum))
    return tf.tensordot(power, member, axes=[[2], [0]])


def perceptual_loss(clean: tf.Tensor, estimate: tf.Tensor) -> tf.Tensor:
    """Per-item PESQ-style disturbance of ``estimate`` against ``clean`` (``(batch, samples)``); 0 when equal."""
    member_np, width_np, threshold_np = bark_bands()
    member, width, threshold = (tf.constant(a) for a in (member_np, width_np, threshold_np))
    ref, est = _bark_power(clean, member), _bark_power(estimate, member)

    def loudness(power: tf.Tensor) -> tf.Tensor:
        return (threshold / 0.5) ** ZWICKER_POWER * (tf.pow(0.5 + 0.5 * power / threshold, ZWICKER_POWER) - 1.0)

    ref_loud, est_loud = loudness(ref), loudness(est)
    difference = est_loud - ref_loud
    masked = 0.25 * tf.minimum(ref_loud, est_loud)
    disturbance = tf.sign(difference) * tf.nn.relu(tf.abs(difference) - masked)
    # PESQ's asymmetry factor, counted where the estimate holds at least three times the reference's power;
    # its offset sits as far above the most sensitive band's threshold as PESQ's does
    offset = 200.0 * float(threshold_np.min())
    ratio = tf.pow((est + offset) / (ref + offset), 1.2)
    asymmetry = tf.where(ratio < 3.0, tf.zeros_like(ratio), tf.minimum(ratio, 12.0))
    share = width / tf.reduce_sum(width)
    symmetric = tf.sqrt(tf.reduce_sum(tf.square(disturbance) * share, axis=-1) + 1e-12)
    asymmetric = tf.reduce_sum(tf.abs(disturbance) * asymmetry * share, axis=-1)
    return tf.reduce_mean(SYMMETRIC_WEIGHT * symmetric + ASYMMETRIC_WEIGHT * asymmetric, axis=-1)
