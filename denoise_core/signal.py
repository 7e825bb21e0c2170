"""The signal contract shared by training, export, evaluation and the service.

Everything that turns audio into network inputs and network outputs back into audio
lives here, so the features a model was trained on are, by construction, the ones
it is served with: decode -> mono/resample -> STFT -> magnitude representation ->
min-max normalisation -> pad to the legal frame multiple -> network -> inverse.

Network tensors are float32, laid out ``(batch, freq, time, channels)`` here; a model file
whose contract says ``layout="channels_first"`` takes and returns ``(batch, channels, time,
freq)`` instead (:func:`to_model_layout`, applied where the file is run). A network
outputs the clean normalised magnitude features (``output="magnitude"``, the seed
recipe), a bounded mask on the noisy magnitude (``output="mask"``), or a bounded
complex mask on the noisy spectrum (``output="complex_mask"``: two channels, real and
imaginary; its inputs carry the compressed real and imaginary parts beside the
magnitude, see :func:`network_input`). A complex mask with deep filtering (``df_bins``)
comes as one array, the taps in channels 2.. of the lowest bins, or as the two parts of
:class:`MaskAndTaps`, as a model file with ``mask`` and ``taps`` outputs returns it.
"""

from __future__ import annotations

import functools
import io
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import soundfile as sf
import soxr

MagnitudeKind = Literal["db", "compressed"]
OutputKind = Literal["magnitude", "mask", "complex_mask"]
Layout = Literal["channels_last", "channels_first"]


@dataclass(frozen=True)
class MaskAndTaps:
    """A deep-filter network's output in two parts: the complex mask ``(..., freq, frames, 2)``
    and the taps of the lowest ``df_bins`` bins ``(..., df_bins, frames, 2 * df_order)``."""

    mask: np.ndarray
    taps: np.ndarray


#: a network's output: one ``(..., freq, frames, channels)`` array, or a deep filter's two parts
NetOutput = np.ndarray | MaskAndTaps
Predict = Callable[[np.ndarray], NetOutput]

#: amplitude floor of the dB representation (-100 dB); no per-file top_db clipping,
#: so features do not depend on the loudest moment of the file or chunk.
DB_AMIN = 1e-5

#: default chunk length and cross-fade for long inputs: one onnxruntime thread runs the band
#: network faster per audio second on 10-s chunks than on longer ones, overlap included
#: (`python -m service.benchmark --chunks 30 15 10` prints each); a quarter-second cross-fade
#: changes the output as little as a 1-s one (`python -m training.evaluation.chunking` prints both)
CHUNK_SECONDS = 10.0
CHUNK_OVERLAP_SECONDS = 0.25


class AudioDecodeError(ValueError):
    """The bytes are not audio that can be decoded, or decode to unusable samples."""


@dataclass(frozen=True)
class SignalSpec:
    """Everything needed to turn a waveform into model inputs and back.

    ``norm_min``/``norm_max`` are the min-max statistics of the training split, in
    the magnitude representation. ``frame_multiple`` is the legal multiple of the
    frame count (2 ** number of time downsamplings).
    """

    sample_rate: int = 16000
    n_fft: int = 512
    hop_length: int = 256
    win_length: int | None = None
    window: str = "hann"
    center: bool = True
    magnitude: MagnitudeKind = "compressed"
    compress_exponent: float = 0.3
    output: OutputKind = "mask"
    norm_min: float = 0.0
    norm_max: float = 1.0
    frame_multiple: int = 1
    #: frames after t that the output at frame t depends on (None: not bounded by design)
    lookahead_frames: int | None = None
    #: strength of the mask post-filter (0: none); see :func:`post_filter_gain`
    post_filter: float = 0.0
    #: complex mask only: the lowest ``df_bins`` bins take a deep filter of ``df_order``
    #: complex taps over noisy frames t - (order - 1 - df_lookahead) .. t + df_lookahead
    #: instead of the mask (0: none); see :func:`deep_filter`
    df_bins: int = 0
    df_order: int = 5
    df_lookahead: int = 2
    #: the model file's tensor layout: ``(batch, freq, frames, channels)`` or
    #: ``(batch, channels, frames, freq)``; see :func:`to_model_layout`
    layout: Layout = "channels_last"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def n_freq(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def input_channels(self) -> int:
        """Channels of the network input: magnitude, plus real and imaginary for a complex mask."""
        return 3 if self.output == "complex_mask" else 1

    @property
    def output_channels(self) -> int:
        """Channels of the network output: real and imaginary for a complex mask (then, with a
        deep filter, real and imaginary of each tap), else one."""
        if self.output != "complex_mask":
            return 1
        return 2 + (2 * self.df_order if self.df_bins else 0)

    @property
    def df_past(self) -> int:
        """Past noisy frames a deep-filter tap reaches back to."""
        return self.df_order - 1 - self.df_lookahead

    @property
    def window_length(self) -> int:
        return self.win_length or self.n_fft

    def with_stats(self, norm_min: float, norm_max: float) -> "SignalSpec":
        return replace(self, norm_min=float(norm_min), norm_max=float(norm_max))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("extra")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SignalSpec":
        names = {f for f in cls.__dataclass_fields__ if f != "extra"}
        kwargs = {k: v for k, v in d.items() if k in names}
        return cls(**kwargs)


# --------------------------------------------------------------------------- decode
def decode_audio(source: bytes | str | Path) -> tuple[np.ndarray, int]:
    """Decode audio bytes or a file into float32 ``(frames, channels)`` and its rate.

    Raises :class:`AudioDecodeError` for anything libsndfile cannot read, empty
    audio, or non-finite samples.
    """
    try:
        handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
        audio, sr = sf.read(handle, dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises several types
        raise AudioDecodeError(f"could not decode audio: {exc}") from exc
    if audio.shape[0] == 0:
        raise AudioDecodeError("audio contains no samples")
    if not np.all(np.isfinite(audio)):
        raise AudioDecodeError("audio contains NaN or infinite samples")
    return audio, int(sr)


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Average ``(frames, channels)`` (or 1-D) audio into one float32 channel."""
    if audio.ndim == 1:
        return audio.astype(np.float32, copy=False)
    return audio.mean(axis=1).astype(np.float32)


def resample(wave: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample a 1-D waveform with soxr (high quality); identity when rates match.

    soxr's output is trimmed or zero-padded to ``ceil(len * sr_out / sr_in)`` samples.
    """
    wave = np.asarray(wave, dtype=np.float32)
    if sr_in == sr_out:
        return wave
    out = soxr.resample(wave, sr_in, sr_out, quality="HQ")
    return _fix_length(out, int(np.ceil(wave.shape[-1] * (float(sr_out) / sr_in)))).astype(np.float32, copy=False)


def load_mono(path: str | Path, sample_rate: int) -> np.ndarray:
    """Read a file, downmix to mono and resample to ``sample_rate``."""
    audio, sr = decode_audio(path)
    return resample(to_mono(audio), sr, sample_rate)


# --------------------------------------------------------------------------- STFT
def _fix_length(x: np.ndarray, size: int) -> np.ndarray:
    """Trim or zero-pad the last axis of ``x`` to ``size``."""
    n = x.shape[-1]
    if n >= size:
        return x[..., :size]
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, size - n)])


def _window(spec: SignalSpec) -> np.ndarray:
    """Periodic analysis window (float64) of ``win_length``, zero-padded centred to ``n_fft``."""
    if spec.window != "hann":
        raise ValueError(f"unsupported STFT window {spec.window!r}: only 'hann' is implemented")
    n_fft, win = spec.n_fft, spec.window_length
    if not 0 < win <= n_fft:
        raise ValueError(f"win_length={win} must be in [1, n_fft={n_fft}]")
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win) / win) if win > 1 else np.ones(1)
    left = (n_fft - win) // 2
    return np.pad(window, (left, n_fft - win - left))


def _overlap_add(frames: np.ndarray, hop: int, dtype: Any = np.float64) -> np.ndarray:
    """Overlap-add ``(..., frames, n_fft)`` at ``hop`` into ``(..., n_fft + hop * (frames - 1))`` of ``dtype``."""
    n_frames, n_fft = frames.shape[-2:]
    k = -(-n_fft // hop)  # hop-sized blocks per frame
    blocks = frames if k * hop == n_fft else np.pad(frames, [(0, 0)] * (frames.ndim - 1) + [(0, k * hop - n_fft)])
    blocks = blocks.reshape(*frames.shape[:-1], k, hop)
    out = np.zeros((*frames.shape[:-2], n_frames + k - 1, hop), dtype=dtype)
    for j in range(k):
        out[..., j : j + n_frames, :] += blocks[..., j, :]
    return out.reshape(*frames.shape[:-2], -1)[..., : n_fft + hop * (n_frames - 1)]


@functools.lru_cache(maxsize=16)
def _inverse_window_sum(n_fft: int, hop: int, win_length: int, window: str, n_frames_used: int) -> np.ndarray:
    """1 / the overlap-added squared window of ``n_frames_used`` frames (1 where that sum is 0),
    read-only and cached: every chunk of one length shares it."""
    spec = SignalSpec(n_fft=n_fft, hop_length=hop, win_length=win_length, window=window)
    norm = _overlap_add(np.broadcast_to(_window(spec) ** 2, (n_frames_used, n_fft)), hop)
    nonzero = norm > np.finfo(np.float32).tiny
    inverse = np.ones_like(norm)
    inverse[nonzero] = 1.0 / norm[nonzero]
    inverse.flags.writeable = False
    return inverse


def stft(wave: np.ndarray, spec: SignalSpec) -> np.ndarray:
    """Complex64 STFT ``(freq, frames)`` of a 1-D waveform (``(batch, freq, frames)`` of ``(batch, samples)``).

    Periodic Hann window; when ``spec.center`` the signal is zero-padded by
    ``n_fft // 2`` on both sides, so frame ``t`` is centred on sample ``t * hop``.
    """
    wave = np.asarray(wave, dtype=np.float32)
    n_fft, hop = spec.n_fft, spec.hop_length
    window = _window(spec)
    if spec.center:
        pad = n_fft // 2
        wave = np.pad(wave, [(0, 0)] * (wave.ndim - 1) + [(pad, pad)])
    if wave.shape[-1] < n_fft:
        raise ValueError(f"n_fft={n_fft} is too large for an uncentred STFT of {wave.shape[-1]} samples")
    frames = np.lib.stride_tricks.sliding_window_view(wave, n_fft, axis=-1)[..., ::hop, :]
    spectrum = np.fft.rfft(frames * window, axis=-1)
    return np.swapaxes(spectrum, -1, -2).astype(np.complex64, copy=False)


def istft(spectrum: np.ndarray, spec: SignalSpec, length: int) -> np.ndarray:
    """Inverse of :func:`stft` (windowed overlap-add), trimmed or zero-padded to ``length`` samples."""
    spectrum = np.asarray(spectrum)
    n_fft, hop = spec.n_fft, spec.hop_length
    window = _window(spec)
    start = n_fft // 2 if spec.center else 0
    # frames past the end of the requested signal do not contribute
    n_frames_used = min(spectrum.shape[-1], int(np.ceil((length + 2 * start) / hop)))
    frames = np.fft.irfft(spectrum[..., :n_frames_used], n=n_fft, axis=-2)
    out = _overlap_add(np.swapaxes(frames, -1, -2) * window.astype(frames.dtype), hop, np.result_type(frames.dtype, np.float32))
    inverse = _inverse_window_sum(n_fft, hop, spec.window_length, spec.window, n_frames_used)
    out = _fix_length(out[..., start:], length) * _fix_length(inverse[start:], length)
    return out.astype(np.float32, copy=False)


def n_frames(n_samples: int, spec: SignalSpec) -> int:
    """Number of STFT frames for ``n_samples`` (centred: the signal is padded by n_fft // 2 on each side)."""
    padded = n_samples + 2 * (spec.n_fft // 2) if spec.center else n_samples
    return 1 + max(0, padded - spec.n_fft) // spec.hop_length


def valid_frames(frames: int, multiple: int) -> int:
    """Smallest legal frame count >= ``frames`` (a multiple of ``multiple``)."""
    return int(math.ceil(max(frames, 1) / multiple) * multiple)


# --------------------------------------------------------------------------- features
def magnitude_features(magnitude: np.ndarray, spec: SignalSpec) -> np.ndarray:
    """Map a linear magnitude into the model's representation (dB or |X|^p)."""
    magnitude = np.asarray(magnitude, dtype=np.float32)
    if spec.magnitude == "db":
        return (20.0 * np.log10(np.maximum(magnitude, DB_AMIN))).astype(np.float32)
    return np.power(magnitude, spec.compress_exponent).astype(np.float32)


def features_to_magnitude(features: np.ndarray, spec: SignalSpec) -> np.ndarray:
    """Inverse of :func:`magnitude_features`."""
    features = np.asarray(features, dtype=np.float32)
    if spec.magnitude == "db":
        return np.power(10.0, features / 20.0).astype(np.float32)
    return np.power(np.maximum(features, 0.0), 1.0 / spec.compress_exponent).astype(np.float32)


def normalise(features: np.ndarray, spec: SignalSpec) -> np.ndarray:
    """Min-max normalise with the training-split statistics."""
    scale = max(spec.norm_max - spec.norm_min, 1e-8)
    return ((features - spec.norm_min) / scale).astype(np.float32)


def denormalise(normalised: np.ndarray, spec: SignalSpec) -> np.ndarray:
    """Inverse of :func:`normalise`."""
    return (normalised * (spec.norm_max - spec.norm_min) + spec.norm_min).astype(np.float32)


def wave_features(wave: np.ndarray, spec: SignalSpec) -> np.ndarray:
    """Un-normalised magnitude features ``(freq, frames)`` of a waveform."""
    return magnitude_features(np.abs(stft(wave, spec)), spec)


def model_input(wave: np.ndarray, spec: SignalSpec) -> np.ndarray:
    """Normalised features ``(freq, frames)`` exactly as the network sees them."""
    return normalise(wave_features(wave, spec), spec)


def pad_frames(features: np.ndarray, multiple: int, axis: int = -1) -> tuple[np.ndarray, int]:
    """Pad the time axis (``axis``, the last by default) of features up to a legal frame count.

    Padding uses 0.0, the normalised value of the quietest training frame. Returns
    the padded array and the original frame count (crop the output back to it).
    """
    frames = features.shape[axis]
    target = valid_frames(frames, multiple)
    if target == frames:
        return features, frames
    pad = [(0, 0)] * features.ndim
    pad[axis] = (0, target - frames)
    return np.pad(features, pad, mode="constant", constant_values=0.0), frames


def to_model_layout(batch: np.ndarray, layout: Layout) -> np.ndarray:
    """A contiguous float32 ``(batch, freq, frames, channels)`` array in the model file's ``layout``."""
    if layout == "channels_first":
        batch = np.transpose(batch, (0, 3, 2, 1))
    elif layout != "channels_last":
        raise ValueError(f"unknown layout {layout!r}")
    return np.ascontiguousarray(batch, dtype=np.float32)


def from_model_layout(out: np.ndarray, layout: Layout) -> np.ndarray:
    """A model output in ``layout`` as ``(batch, freq, frames, channels)`` (a view, no copy)."""
    return np.transpose(out, (0, 3, 2, 1)) if layout == "channels_first" else out


def network_input(spectrum: np.ndarray, spec: SignalSpec) -> np.ndarray:
    """Network input ``(..., freq, frames, channels)`` of a complex STFT ``(..., freq, frames)``.

    Channel 0 is the normalised magnitude representation. For a complex mask, channels
    1 and 2 are the real and imaginary parts of the compressed spectrum
    ``|X|^p e^{i phase}``, divided by the same normalisation range (so they lie in
    [-1, 1] where the magnitude channel lies in [0, 1]).
    """
    magnitude = np.abs(spectrum).astype(np.float32, copy=False)
    if spec.output != "complex_mask":
        return normalise(magnitude_features(magnitude, spec), spec)[..., np.newaxis]
    compressed = np.power(magnitude, np.float32(spec.compress_exponent))
    out = np.empty((*magnitude.shape, 3), dtype=np.float32)
    out[..., 0] = normalise(compressed if spec.magnitude == "compressed" else magnitude_features(magnitude, spec), spec)
    ratio = compressed / (np.float32(max(spec.norm_max - spec.norm_min, 1e-8)) * np.maximum(magnitude, np.float32(1e-12)))
    out[..., 1] = spectrum.real * ratio
    out[..., 2] = spectrum.imag * ratio
    return out


def run_network(features: np.ndarray, spec: SignalSpec, predict: Predict) -> NetOutput:
    """Run ``predict`` on network input ``(freq, frames, channels)``; returns ``(freq, frames, out_channels)``
    (or each part of a :class:`MaskAndTaps` so).

    Pads the frames to the legal multiple, adds the batch axis, and crops the result.
    ``predict`` takes and returns ``(batch, freq, frames, channels)`` whatever the model
    file's layout (:meth:`denoise_core.model_file.OnnxModel.predict` converts).
    """
    padded, frames = pad_frames(features, spec.frame_multiple, axis=1)
    out = predict(padded[np.newaxis].astype(np.float32, copy=False))
    if isinstance(out, MaskAndTaps):
        return MaskAndTaps(*(np.asarray(part, dtype=np.float32)[0, :, :frames, :] for part in (out.mask, out.taps)))
    return np.asarray(out, dtype=np.float32)[0, :, :frames, :]


def output_parts(net_out: NetOutput, spec: SignalSpec) -> MaskAndTaps:
    """A complex mask's output as its two parts (of a single array, views of its channels and
    bins; the taps are empty without deep filtering)."""
    if isinstance(net_out, MaskAndTaps):
        return net_out
    return MaskAndTaps(net_out[..., :2], net_out[..., :spec.df_bins, :, 2:])


def post_filter_gain(gain: np.ndarray, beta: float) -> np.ndarray:
    """Lower gains below one further, the more the lower, and keep gains of one or more.

    The mask post-filter of DeepFilterNet (Schröter et al., 2022): with ``s = g·sin(πg/2)``,
    ``g' = (1 + β)·g / (1 + β·g²/s²)``, here with ``g`` clipped to [0, 1] inside the sine so
    that gains of one or more pass unchanged.
    """
    g = np.asarray(gain, dtype=np.float32)
    sine = np.sin(np.float32(np.pi / 2) * np.clip(g, 0.0, 1.0))
    return np.where(g >= 1.0, g, (1.0 + beta) * g / (1.0 + beta / np.maximum(sine * sine, 1e-12))).astype(np.float32)


def deep_filter(spectrum: np.ndarray, taps: np.ndarray, past: int,
                before: np.ndarray | None = None, after: np.ndarray | None = None) -> np.ndarray:
    """``sum_k taps[..., k] * spectrum[..., t - past + k]`` over the frame axis (-1 of
    ``spectrum``, -2 of ``taps``). ``before`` and ``after`` are the ``past`` and
    ``order - 1 - past`` frames next to ``spectrum`` (zeros where None: a whole recording)."""
    order = taps.shape[-1]
    lead = spectrum.shape[:-1]
    before = np.zeros((*lead, past), spectrum.dtype) if before is None else before
    after = np.zeros((*lead, order - 1 - past), spectrum.dtype) if after is None else after
    if before.shape[-1] != past or after.shape[-1] != order - 1 - past:
        raise ValueError(f"a deep filter of order {order} with {past} past frames needs {past} frames before and "
                         f"{order - 1 - past} after, got {before.shape[-1]} and {after.shape[-1]}")
    padded = np.concatenate([before, spectrum, after], axis=-1)
    frames = spectrum.shape[-1]
    return sum(taps[..., k] * padded[..., k:k + frames] for k in range(order))


def _complex_pairs(pairs: np.ndarray) -> np.ndarray:
    """``(..., 2n)`` interleaved real and imaginary parts as ``(..., n)`` complex64 (any strides)."""
    pairs = np.asarray(pairs, dtype=np.float32)
    return pairs[..., 0::2] + np.complex64(1j) * pairs[..., 1::2]


def apply_output(spectrum: np.ndarray, net_out: NetOutput, spec: SignalSpec,
                 before: np.ndarray | None = None, after: np.ndarray | None = None) -> np.ndarray:
    """The clean complex STFT ``(..., freq, frames)`` from the noisy one and the network output
    ``(..., freq, frames, k)`` (or a deep filter's :class:`MaskAndTaps`).

    A mask multiplies the noisy magnitude and a magnitude output is de-normalised; both
    keep the noisy phase. A complex mask multiplies the noisy spectrum; with ``spec.df_bins``,
    the lowest bins are the deep filter of channels 2.. instead (:func:`deep_filter`; ``before``
    and ``after``: the noisy frames of those bins next to ``spectrum``, for a stream). With
    ``spec.post_filter`` set, a mask's gain (a complex mask's modulus) goes through
    :func:`post_filter_gain` first; a complex mask keeps its phase.
    """
    if isinstance(net_out, MaskAndTaps) and not (spec.output == "complex_mask" and spec.df_bins):
        raise ValueError(f"a mask and taps output needs a deep-filter contract, not output={spec.output!r} with df_bins={spec.df_bins}")
    if spec.output == "complex_mask":
        parts = output_parts(net_out, spec)
        mask = _complex_pairs(parts.mask)[..., 0]
        if spec.post_filter:
            modulus = np.abs(mask)
            mask = mask * (post_filter_gain(modulus, spec.post_filter) / np.maximum(modulus, 1e-12))
        clean = spectrum * mask
        if spec.df_bins:
            taps = _complex_pairs(parts.taps)  # (..., bins, frames, order)
            clean[..., :spec.df_bins, :] = deep_filter(spectrum[..., :spec.df_bins, :], taps, spec.df_past, before, after)
        return clean.astype(np.complex64, copy=False)
    magnitude = np.abs(spectrum)
    if spec.output == "mask":
        gain = net_out[..., 0]
        clean_mag = magnitude * (post_filter_gain(gain, spec.post_filter) if spec.post_filter else gain)
    else:
        clean_mag = features_to_magnitude(denormalise(net_out[..., 0], spec), spec)
    phase = np.exp(1j * np.angle(spectrum)).astype(np.complex64)
    return clean_mag * phase


def enhance_wave(wave: np.ndarray, spec: SignalSpec, predict: Predict) -> np.ndarray:
    """Denoise one mono waveform at the model's rate; returns the same length."""
    wave = np.asarray(wave, dtype=np.float32)
    spectrum = stft(wave, spec)
    net_out = run_network(network_input(spectrum, spec), spec, predict)
    return istft(apply_output(spectrum, net_out, spec), spec, length=wave.shape[0])


# --------------------------------------------------------------------------- chunking
@dataclass(frozen=True)
class ChunkPlan:
    """Overlapping chunks for long inputs: memory stays bounded by ``chunk`` samples."""

    chunk: int
    overlap: int

    @classmethod
    def for_seconds(cls, chunk_seconds: float, overlap_seconds: float, sample_rate: int, hop: int) -> "ChunkPlan":
        """The plan :func:`enhance_long` uses: the step between chunk starts is whole STFT hops
        (the chunk may shrink by less than a hop), so inside a chunk the network sees exactly
        the frames a one-pass run would."""
        overlap = max(0, int(round(overlap_seconds * sample_rate)))
        step = max(hop, (int(round(chunk_seconds * sample_rate)) - overlap) // hop * hop)
        return cls(chunk=step + overlap, overlap=overlap)

    def spans(self, n_samples: int) -> list[tuple[int, int]]:
        if n_samples <= self.chunk:
            return [(0, n_samples)]
        step = self.chunk - self.overlap
        spans = []
        start = 0
        while True:
            end = min(start + self.chunk, n_samples)
            spans.append((start, end))
            if end == n_samples:
                return spans
            start += step


def enhance_long(
    wave: np.ndarray,
    spec: SignalSpec,
    predict: Predict,
    chunk_seconds: float = CHUNK_SECONDS,
    overlap_seconds: float = CHUNK_OVERLAP_SECONDS,
) -> np.ndarray:
    """Denoise a mono waveform of any length in overlapping chunks.

    Chunk steps are whole STFT hops (the chunk may shrink by less than a hop).
    Neighbouring chunks are cross-faded over the overlap with complementary
    raised-cosine ramps (they sum to one), so a pass-through network returns the
    input and a real network leaves no seam.
    """
    plan = ChunkPlan.for_seconds(chunk_seconds, overlap_seconds, spec.sample_rate, spec.hop_length)
    spans = plan.spans(wave.shape[0])
    if len(spans) == 1:
        return enhance_wave(wave, spec, predict)
    out = np.zeros(wave.shape[0], dtype=np.float32)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(plan.overlap) + 0.5) / plan.overlap)
    for i, (start, end) in enumerate(spans):
        piece = enhance_wave(wave[start:end], spec, predict)
        weight = np.ones(end - start, dtype=np.float32)
        if i > 0 and plan.overlap:
            weight[: plan.overlap] = ramp
        if i < len(spans) - 1 and plan.overlap:
            weight[-plan.overlap :] *= ramp[::-1]
        out[start:end] += piece * weight
    return out


def enhance_audio(
    audio: np.ndarray,
    sample_rate: int,
    spec: SignalSpec,
    predict: Predict,
    chunk_seconds: float = CHUNK_SECONDS,
    overlap_seconds: float = CHUNK_OVERLAP_SECONDS,
    attenuation_limit_db: float | None = None,
) -> np.ndarray:
    """Denoise ``(frames, channels)`` audio at any rate; same shape and rate out.

    Each channel is resampled to the model's rate, denoised in chunks, resampled
    back, trimmed or padded to the input length and clipped to [-1, 1]. Content
    above the model's Nyquist frequency is not restored.

    ``attenuation_limit_db`` (None: no limit) keeps some of the input: see
    :func:`limit_attenuation`. 0 dB returns the input without running the model.
    """
    if audio.ndim == 1:
        audio = audio[:, np.newaxis]
    dry_gain = attenuation_gain(attenuation_limit_db)
    if dry_gain == 1.0:
        return np.clip(audio.astype(np.float32), -1.0, 1.0)
    n = audio.shape[0]
    out = np.empty_like(audio, dtype=np.float32)
    for ch in range(audio.shape[1]):
        wave = resample(audio[:, ch], sample_rate, spec.sample_rate)
        clean = enhance_long(wave, spec, predict, chunk_seconds, overlap_seconds)
        back = resample(clean, spec.sample_rate, sample_rate)
        if back.shape[0] < n:
            back = np.pad(back, (0, n - back.shape[0]))
        out[:, ch] = back[:n]
    if dry_gain is not None:
        out = limit_attenuation(out, audio, dry_gain)
    return np.clip(out, -1.0, 1.0)


def attenuation_gain(attenuation_limit_db: float | None) -> float | None:
    """The input's share ``g = 10 ** (-X / 20)`` for a limit of X dB (None: no limit)."""
    if attenuation_limit_db is None:
        return None
    x = float(attenuation_limit_db)
    if math.isnan(x) or x < 0:
        raise ValueError(f"attenuation_limit_db must be >= 0 dB, got {attenuation_limit_db!r}")
    return 10.0 ** (-x / 20.0)


def limit_attenuation(denoised: np.ndarray, noisy: np.ndarray, dry_gain: float) -> np.ndarray:
    """``(1 - g) * denoised + g * noisy``, sample by sample at the input's rate.

    Whatever the model's output kind, noise the model removes entirely ends up
    ``-20 log10(g)`` dB below the input's, and no further; speech the model keeps is
    unchanged.
    """
    g = np.float32(dry_gain)
    return ((np.float32(1.0) - g) * denoised + g * noisy.astype(np.float32, copy=False)).astype(np.float32)


# --------------------------------------------------------------------------- mixing
def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def fit_length(noise: np.ndarray, length: int, offset: int = 0) -> np.ndarray:
    """Tile (from ``offset``) or trim ``noise`` to ``length`` samples."""
    if noise.shape[0] == 0:
        raise ValueError("empty noise")
    reps = int(math.ceil((length + offset) / noise.shape[0]))
    return np.tile(noise, reps)[offset : offset + length].astype(np.float32)


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> tuple[np.ndarray, np.ndarray]:
    """Scale ``noise`` so speech/noise power is ``snr_db``; returns (mixture, scaled noise)."""
    scale = rms(speech) / (rms(noise) * 10.0 ** (snr_db / 20.0))
    scaled = (noise * scale).astype(np.float32)
    return (speech + scaled).astype(np.float32), scaled


def snr_db(speech: np.ndarray, noise: np.ndarray) -> float:
    """Measured SNR in dB of a speech/noise pair."""
    return 20.0 * math.log10(rms(speech) / rms(noise))
