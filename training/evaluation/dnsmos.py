"""DNSMOS P.835 (SIG, BAK, OVRL): non-intrusive MOS estimates of a waveform, no reference needed.

The models are Microsoft's DNS Challenge DNSMOS, as bundled in the ``speechmos`` package:
the standard (non-personalised) P.835 model ``speechmos/dnsmos_models/sig_bak_ovr.onnx``
and its polynomial calibration, i.e. ``speechmos.dnsmos.run(x, 16000)`` with the default
``model_type="dnsmos"`` (the DNS Challenge's ``dnsmos_local.py`` without ``-p``). Scores
are the mean over 9.01 s windows hopped by 1 s; a clip shorter than one window is tiled
to exactly one window (the reference doubles it until it fills a window and then averages
1-9 windows that are cyclic shifts of the same tiled clip; scoring one keeps the cost at
one window per short clip, about 0.1-0.3 CPU s on one core). ``--no-dnsmos`` skips it.

The ONNX sessions are single-threaded (the evaluation runs next to other work, and the
score does not depend on it). A clip that cannot be scored (shorter than
:data:`MIN_SECONDS`, silent, not finite, or the model fails) gets NaN for all three.
If ``speechmos`` cannot be imported or its models cannot be loaded, :func:`status`
says why and every score is NaN: the evaluation still runs.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
#: result keys, headline first
KEYS = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak")
#: shorter clips would be tiled more than ~9 times to fill one window: not scored
MIN_SECONDS = 1.0
MODEL_FILE = "dnsmos_models/sig_bak_ovr.onnx"

_state: dict[str, Any] = {"scorer": None, "error": None, "version": None, "disabled": None, "cpu_seconds": 0.0,
                          "clips": 0}


WINDOW_SECONDS = 9.01  #: DNSMOS input length (speechmos INPUT_LENGTH)


def _nan() -> dict[str, float]:
    return {k: float("nan") for k in KEYS}


def _load() -> Any:
    """The scorer, created once; None (with the reason kept) when DNSMOS cannot run here."""
    if _state.get("disabled"):
        return None
    if _state["scorer"] is not None or _state["error"] is not None:
        return _state["scorer"]
    try:
        import os

        import onnxruntime as ort
        import speechmos.dnsmos as sd

        try:
            from importlib.metadata import version

            _state["version"] = version("speechmos")
        except Exception:  # pragma: no cover - metadata missing is not fatal
            _state["version"] = "unknown"
        base = os.path.dirname(os.path.abspath(sd.__file__))

        class _Scorer(sd.DNSMOS):
            """speechmos' DNSMOS, its sessions limited to one thread."""

            def __init__(self, primary_model_path: str, p808_model_path: str) -> None:
                options = ort.SessionOptions()
                options.intra_op_num_threads = 1
                options.inter_op_num_threads = 1
                providers = ["CPUExecutionProvider"]
                self.primary_model_path = primary_model_path
                self.onnx_sess = ort.InferenceSession(primary_model_path, options, providers=providers)
                self.p808_onnx_sess = ort.InferenceSession(p808_model_path, options, providers=providers)

        _state["scorer"] = _Scorer(os.path.join(base, MODEL_FILE), os.path.join(base, "dnsmos_models", "model_v8.onnx"))
    except Exception as exc:  # ImportError, a missing model file, an onnxruntime error
        _state["error"] = f"{type(exc).__name__}: {exc}"
    return _state["scorer"]


def disable(reason: str) -> None:
    """Do not compute DNSMOS until :func:`enable` (scores become NaN, :func:`status` gives ``reason``)."""
    _state["disabled"] = reason


def enable() -> None:
    _state["disabled"] = None


def status() -> dict[str, Any]:
    """Whether DNSMOS runs here, which package version and model, or why not."""
    available = _load() is not None
    out: dict[str, Any] = {"available": available, "package": "speechmos", "version": _state["version"],
                           "model": f"{MODEL_FILE} (P.835, personalized=False)", "min_seconds": MIN_SECONDS,
                           "clips_scored": _state.get("clips", 0), "cpu_seconds": _state.get("cpu_seconds", 0.0)}
    if not available:
        out["reason"] = _state.get("disabled") or _state["error"]
    return out


def dnsmos(estimate: np.ndarray, sr: int = SAMPLE_RATE) -> dict[str, float]:
    """DNSMOS OVRL, SIG and BAK of one waveform (mono); NaN for all three when it cannot be scored."""
    scorer = _load()
    if scorer is None:
        return _nan()
    wave = np.asarray(estimate, dtype=np.float64).ravel()
    if sr != SAMPLE_RATE:
        import soxr

        wave = soxr.resample(wave, sr, SAMPLE_RATE)
    if wave.shape[0] < MIN_SECONDS * SAMPLE_RATE or not np.all(np.isfinite(wave)) or not np.any(wave):
        return _nan()
    wave = np.clip(wave, -1.0, 1.0).astype(np.float32)  # as a 16-bit WAV of it would be; speechmos rejects |x| > 1
    window = int(WINDOW_SECONDS * SAMPLE_RATE)
    if wave.shape[0] < window:
        # tile to exactly one window: the reference's doubling would score 1-9 cyclic
        # shifts of the same tiled clip; one keeps the cost at one window per clip
        wave = np.tile(wave, -(-window // wave.shape[0]))[:window]
    cpu0 = time.process_time()
    try:
        result = scorer(wave, SAMPLE_RATE, False)
        out = {"dnsmos_ovrl": float(result["ovrl_mos"]), "dnsmos_sig": float(result["sig_mos"]),
               "dnsmos_bak": float(result["bak_mos"])}
    except Exception:  # never allowed to stop the run
        return _nan()
    finally:
        _state["cpu_seconds"] = _state.get("cpu_seconds", 0.0) + time.process_time() - cpu0
        _state["clips"] = _state.get("clips", 0) + 1
    return out if all(math.isfinite(v) for v in out.values()) else _nan()
