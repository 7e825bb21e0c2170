"""Objective metrics, all on 16 kHz mono waveforms of equal length.

SI-SDR is implemented here (zero-mean, scale-invariant, Le Roux et al. 2019); PESQ-WB
comes from ``pesq``, STOI from ``pystoi`` and DNSMOS P.835 (OVRL, SIG, BAK; non-intrusive,
the estimate alone) from ``speechmos`` via :mod:`.dnsmos`. A metric that cannot be computed
on a mixture (PESQ finds no utterance, a signal is silent, DNSMOS is not installed) is
recorded as NaN and counted, never allowed to stop the run.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from denoise_core.signal import SignalSpec, model_input
from training.evaluation.dnsmos import dnsmos

SAMPLE_RATE = 16000
#: metric -> True when higher is better
METRICS: dict[str, bool] = {"si_sdr": True, "pesq": True, "stoi": True, "dnsmos_ovrl": True, "dnsmos_sig": True,
                             "dnsmos_bak": True, "seed_mse": False}
LABELS = {"si_sdr": "SI-SDR (dB)", "pesq": "PESQ-WB", "stoi": "STOI", "dnsmos_ovrl": "DNSMOS OVRL",
          "dnsmos_sig": "DNSMOS SIG", "dnsmos_bak": "DNSMOS BAK", "seed_mse": "seed MSE"}
#: the metrics on which a peer beating the model is reported
HEADLINE = ("si_sdr", "pesq", "stoi", "dnsmos_ovrl")
_EPS = 1e-12


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (both signals made zero-mean)."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    est = np.asarray(estimate, dtype=np.float64).ravel()
    if ref.shape != est.shape:
        raise ValueError(f"length mismatch: {ref.shape} vs {est.shape}")
    ref = ref - ref.mean()
    est = est - est.mean()
    ref_energy = float(np.dot(ref, ref))
    if ref_energy <= _EPS:
        return float("nan")
    alpha = float(np.dot(est, ref)) / ref_energy
    target = alpha * ref
    residual = est - target
    return 10.0 * math.log10((float(np.dot(target, target)) + _EPS) / (float(np.dot(residual, residual)) + _EPS))


def pesq_wb(reference: np.ndarray, estimate: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Wide-band PESQ (ITU-T P.862.2); NaN when ``pesq`` refuses the pair."""
    from pesq import PesqError, pesq

    ref = np.asarray(reference, dtype=np.float32)
    est = np.asarray(estimate, dtype=np.float32)
    if not (np.any(ref) and np.any(est)):  # pesq normalises by the peak: silence cannot be scored
        return float("nan")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(pesq(sr, ref, est, "wb"))
    except (PesqError, ValueError, RuntimeError):
        return float("nan")


def stoi(reference: np.ndarray, estimate: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    """Short-time objective intelligibility (classic, not extended); NaN on failure."""
    from pystoi import stoi as _stoi

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(_stoi(np.asarray(reference, dtype=np.float64), np.asarray(estimate, dtype=np.float64), sr, extended=False))
    except (ValueError, RuntimeError, ZeroDivisionError):
        return float("nan")


def seed_mse(reference: np.ndarray, estimate: np.ndarray, seed_spec: SignalSpec | None) -> float:
    """The reference recipe's metric: MSE between normalised dB spectrograms.

    Both waveforms go through the seed STFT and the training split's min-max
    statistics (``seed_spec``), are clipped to [0, 1] and compared bin by bin.
    """
    if seed_spec is None:
        return float("nan")
    a = np.clip(model_input(np.asarray(reference, dtype=np.float32), seed_spec), 0.0, 1.0)
    b = np.clip(model_input(np.asarray(estimate, dtype=np.float32), seed_spec), 0.0, 1.0)
    return float(np.mean(np.square(a.astype(np.float64) - b)))


def score(reference: np.ndarray, estimate: np.ndarray, seed_spec: SignalSpec | None = None, sr: int = SAMPLE_RATE) -> dict[str, float]:
    """All metrics of one estimate against its clean reference."""
    return {
        "si_sdr": si_sdr(reference, estimate),
        "pesq": pesq_wb(reference, estimate, sr),
        "stoi": stoi(reference, estimate, sr),
        **dnsmos(estimate, sr),
        "seed_mse": seed_mse(reference, estimate, seed_spec),
    }
