"""Streaming denoising: samples in, denoised samples out, chunk by chunk, with a fixed delay.

A streaming ONNX model (``python -m training.export_stream``) takes blocks of feature frames
plus its state and returns the masks ``L`` frames (its lookahead) later. :class:`StreamingDenoiser`
wraps one stream around it:

- a streaming STFT with the offline framing of :func:`denoise_core.signal.stft` (periodic Hann,
  ``n_fft // 2`` zeros before the first sample, frame ``t`` centred on sample ``t * hop``);
- the network input of each frame exactly as :func:`denoise_core.signal.network_input`;
- the model run on every new block of frames, its ``state_*`` tensors carried between calls;
- each mask applied to its delayed spectrum frame (:func:`denoise_core.signal.apply_output`);
  a deep filter's taps also read the noisy frames around theirs, so with one the frame waits
  until the ``df_lookahead`` frames after it have arrived;
- a streaming inverse STFT: overlap-add and the window-square normalisation of
  :func:`denoise_core.signal.istft`.

**Delay.** At the model's rate the output is the offline output delayed by exactly
``n_fft + L * hop`` samples (one analysis window plus the lookahead ``L``: the network's
delay, or a deep filter's reach if that is longer; the model file's
``algorithmic_latency_ms``), and every :meth:`StreamingDenoiser.push` returns as many
samples as it was given. :meth:`StreamingDenoiser.flush` returns the rest: the offline
output's last ``delay`` samples. So ``concat(push..., flush())[delay:]`` equals
``enhance_wave(whole input)`` (to float rounding), whatever the chunk sizes.

At other rates (8-48 kHz) a streaming resampler (``soxr.ResampleStream``) converts in and
out; the delay is then a fixed number of samples at the stream's rate that also covers both
resamplers' buffering (:attr:`StreamingDenoiser.delay`), and the output content is shifted
by exactly that many samples.

Channels are independent streams run as one batch (one state per channel).

**Steps.** Every push and flush exists in two forms: :meth:`StreamingDenoiser.push` calls the
model itself, and :meth:`StreamingDenoiser.push_steps` is a generator that yields each model
call it needs as a :data:`StepRequest` ``(features, valid, state)`` and is sent the answer
``(mask, next_state)``, returning the samples at the end. A driver can so answer the requests
of many streams with one batched call (:mod:`denoise_core.stream_batching`); :func:`run_steps`
answers them one by one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Generator, TypeVar

import numpy as np
import soxr

from denoise_core.model_file import ModelInfo, cpu_session, session_io, sha256_of
from denoise_core.signal import SignalSpec, _window, apply_output, network_input

MIN_RATE, MAX_RATE = 8000, 48000
RESAMPLE_QUALITY = "HQ"


State = dict[str, np.ndarray]
#: one model call a stream needs: ``features (batch, n_freq, B, ch)``, ``valid (batch, B)``, ``state``
StepRequest = tuple[np.ndarray, np.ndarray, State]
#: the answer: the masks ``(batch, n_freq, B, out)`` and the next state
StepResult = tuple[np.ndarray, State]
T = TypeVar("T")
Steps = Generator[StepRequest, StepResult, T]


def run_steps(steps: Steps[T], step: Callable[[np.ndarray, np.ndarray, State], StepResult]) -> T:
    """Drive a step generator to its end, answering each request with ``step``; returns its value."""
    try:
        request = next(steps)
        while True:
            request = steps.send(step(*request))
    except StopIteration as done:
        return done.value


def output_lookahead(network_delay: int, spec: SignalSpec) -> int:
    """Frames after t that a stream's output frame t needs: the network's delay, or a deep
    filter's reach (``spec.df_lookahead``) where that is longer."""
    return max(network_delay, spec.df_lookahead if spec.df_bins else 0)


class NotAStreamingModel(ValueError):
    """The file is not a streaming export (no ``streaming`` metadata)."""


@dataclass(frozen=True)
class StateTensor:
    input: str
    output: str
    shape: tuple[int, ...]


class StreamingModel:
    """A streaming ONNX export (``training.export_stream``), loaded with onnxruntime.

    One instance is shared by all streams (``InferenceSession.run`` is thread-safe); each
    stream keeps its own state (:meth:`initial_state`).
    """

    def __init__(self, path: str | Path, intra_op_threads: int = 1, inter_op_threads: int = 1) -> None:
        self.path = Path(path)
        self.session = cpu_session(self.path, intra_op_threads, inter_op_threads)
        props = dict(self.session.get_modelmeta().custom_metadata_map)
        if props.get("streaming") != "true" or "stream_layout" not in props:
            raise NotAStreamingModel(f"{self.path.name} is not a streaming model (no 'streaming' metadata): "
                                     "export one with python -m training.export_stream")
        self.info = ModelInfo.from_props(props)
        layout = json.loads(props["stream_layout"])
        #: frames the network's output lags its input in a stream
        self.network_delay = int(layout["delay"])
        #: frames after t that output frame t needs: the network's delay, or a deep filter's reach if longer
        self.lookahead = output_lookahead(self.network_delay, self.info.signal)
        self.states = tuple(StateTensor(s["input"], s["output"], tuple(int(n) for n in s["shape"][1:]))
                            for s in layout["states"])
        self.sha256 = sha256_of(self.path)
        spec = self.spec
        if not spec.center or spec.n_fft != 2 * spec.hop_length or spec.window_length != spec.n_fft:
            raise ValueError("streaming needs a centred STFT with n_fft == 2 * hop_length == win_length, "
                             f"the model has n_fft={spec.n_fft}, hop={spec.hop_length}, win={spec.window_length}")
        if spec.layout != "channels_last":
            raise ValueError(f"a streaming model's frames are channels-last, the model says {spec.layout}")
        self.outputs = ["mask", *(s.output for s in self.states)]

    @property
    def spec(self) -> SignalSpec:
        return self.info.signal

    @property
    def delay_samples(self) -> int:
        """Algorithmic latency at the model's rate: one window plus the lookahead frames."""
        return self.spec.n_fft + self.lookahead * self.spec.hop_length

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.delay_samples / self.spec.sample_rate

    def initial_state(self, batch: int) -> dict[str, np.ndarray]:
        return {s.input: np.zeros((batch, *s.shape), np.float32) for s in self.states}

    def step(self, features: np.ndarray, valid: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """One call: ``features`` ``(batch, n_freq, B, ch)``, ``valid`` ``(batch, B)``; returns the
        masks ``(batch, n_freq, B, out)`` of frames :attr:`network_delay` earlier and the next state."""
        got = self.session.run(self.outputs, {"features": features.astype(np.float32, copy=False),
                                              "valid": valid.astype(np.float32, copy=False), **state})
        return got[0], {s.input: v for s, v in zip(self.states, got[1:])}

    def io_description(self) -> dict[str, Any]:
        return session_io(self.session)

    def denoise(self, audio: np.ndarray, sample_rate: int, block_samples: int = 320) -> np.ndarray:
        """A whole ``(frames, channels)`` recording streamed in blocks of ``block_samples`` and
        realigned (the stream's delay removed): the same shape out, as ``OnnxModel.denoise``."""
        stream = StreamingDenoiser(self, sample_rate, audio.shape[1])
        pieces = [stream.push(audio[i:i + block_samples]) for i in range(0, audio.shape[0], block_samples)]
        pieces.append(stream.flush())
        return np.concatenate(pieces, axis=0)[stream.delay:]

    def describe(self) -> dict[str, Any]:
        return {"name": self.info.name, "version": self.info.version, "file": self.path.name, "sha256": self.sha256,
                "sample_rate": self.spec.sample_rate, "lookahead_frames": self.lookahead,
                "algorithmic_latency_ms": self.latency_ms, "algorithmic_latency_samples": self.delay_samples}


class _Core:
    """One stream at the model's rate, content-aligned: output sample ``i`` is offline sample ``i``
    (emitted once it is final). ``channels`` streams run as one batch."""

    def __init__(self, model: StreamingModel, channels: int) -> None:
        self.model, self.spec, self.channels = model, model.spec, channels
        self.n_fft, self.hop = self.spec.n_fft, self.spec.hop_length
        self.window = _window(self.spec)
        w2 = self.window ** 2
        self.norm_mid = w2[: self.hop] + w2[self.hop :]  # two frames overlap every interior sample
        self.norm_end = w2[self.hop :]  # the last half hop-block: only the last frame covers it
        self.state = model.initial_state(channels)
        # padded-signal samples from frame `next_frame`'s start on (n_fft // 2 zeros before the input)
        self.buffer = np.zeros((channels, self.n_fft // 2), np.float32)
        self.next_frame = 0  # frames taken from the buffer so far
        self.fed = 0  # frames fed to the model (flush frames included)
        self.pending = np.zeros((channels, self.spec.n_freq, 0), np.complex64)  # noisy spectra not yet enhanced
        self.waiting = np.zeros((channels, self.spec.n_freq, 0, self.spec.output_channels), np.float32)  # their masks so far
        # a deep filter reads noisy frames around its own: the last `past` enhanced ones (zeros
        # before the start) and `future` ones after, so a frame waits for those to arrive
        df_bins = self.spec.df_bins
        self.df_future = self.spec.df_lookahead if df_bins else 0
        self.history = np.zeros((channels, df_bins, self.spec.df_past if df_bins else 0), np.complex64)
        self.offsets = np.arange(self.n_fft)  # sample offsets within one frame
        self.masked = 0  # frames whose mask has been applied
        self.tail = np.zeros((channels, self.hop), np.float64)  # second half of the last synthesised frame
        self.received = 0
        self.emitted = 0

    def _frames(self) -> np.ndarray:
        """Complex64 spectra ``(channels, n_freq, B)`` of every whole frame in the buffer."""
        count = 1 + (self.buffer.shape[1] - self.n_fft) // self.hop if self.buffer.shape[1] >= self.n_fft else 0
        if count == 0:
            return np.zeros((self.channels, self.spec.n_freq, 0), np.complex64)
        frames = self.buffer[:, np.arange(count)[:, np.newaxis] * self.hop + self.offsets]  # (channels, count, n_fft)
        spectrum = np.swapaxes(np.fft.rfft(frames * self.window, axis=-1), -1, -2).astype(np.complex64)
        self.buffer = self.buffer[:, count * self.hop :]
        self.next_frame += count
        return spectrum

    def _run(self, spectrum: np.ndarray | None, flush_frames: int = 0, final: bool = False) -> Steps[np.ndarray]:
        """Feed new frames (and ``flush_frames`` invalid ones); returns the finished samples
        (``final``: the input has ended, so every frame with a mask is finished)."""
        blocks, valid = [], []
        if spectrum is not None and spectrum.shape[-1]:
            blocks.append(network_input(spectrum, self.spec))
            valid.append(np.ones((self.channels, spectrum.shape[-1]), np.float32))
            self.pending = np.concatenate([self.pending, spectrum], axis=2)
        if flush_frames:
            blocks.append(np.zeros((self.channels, self.spec.n_freq, flush_frames, self.spec.input_channels), np.float32))
            valid.append(np.zeros((self.channels, flush_frames), np.float32))
        if blocks:
            features = np.concatenate(blocks, axis=2)
            fed_before = self.fed
            mask, self.state = yield features, np.concatenate(valid, axis=1), self.state
            self.fed += features.shape[2]
            # the masks are for frames fed_before - delay .. ; those before frame 0 are padding
            skip = max(0, self.model.network_delay - fed_before)
            self.waiting = np.concatenate([self.waiting, mask[:, :, skip:]], axis=2)
        return self._enhance(final)

    def _enhance(self, final: bool) -> np.ndarray:
        """Apply every mask whose frame has the noisy frames it reads; returns the samples finished."""
        ready = min(self.waiting.shape[2], self.pending.shape[2] - (0 if final else self.df_future))
        if ready <= 0:
            return np.zeros((self.channels, 0), np.float32)
        spec_block, masks = self.pending[:, :, :ready], self.waiting[:, :, :ready]
        before = after = None
        if self.spec.df_bins:
            bins = self.spec.df_bins
            after = self.pending[:, :bins, ready:ready + self.df_future]
            after = np.pad(after, ((0, 0), (0, 0), (0, self.df_future - after.shape[2])))  # zeros after the end
            before = self.history
            past = before.shape[2]
            self.history = np.concatenate([before, spec_block[:, :bins]], axis=2)[:, :, ready:] if past else before
        self.pending, self.waiting = self.pending[:, :, ready:], self.waiting[:, :, ready:]
        return self._synthesise(apply_output(spec_block, masks, self.spec, before, after))

    def _synthesise(self, clean: np.ndarray) -> np.ndarray:
        """Overlap-add the frames ``(channels, n_freq, B)``; returns the samples they finish."""
        frames = np.swapaxes(np.fft.irfft(clean, n=self.n_fft, axis=-2), -1, -2) * self.window  # (ch, B, n_fft) f64
        out = []
        for b in range(frames.shape[1]):
            t = self.masked
            head = frames[:, b, : self.hop] + self.tail  # padded positions t*hop .. (t+1)*hop
            self.tail = frames[:, b, self.hop :].copy()
            self.masked += 1
            if t == 0:
                continue  # padded positions before the first sample
            out.append((head / self.norm_mid).astype(np.float32))
        if not out:
            return np.zeros((self.channels, 0), np.float32)
        return np.concatenate(out, axis=1)

    def push(self, x: np.ndarray) -> Steps[np.ndarray]:
        """``x`` ``(channels, n)`` float32 in; the samples finished so far out ``(channels, m)``."""
        self.received += x.shape[1]
        self.buffer = np.concatenate([self.buffer, x.astype(np.float32, copy=False)], axis=1)
        out = yield from self._run(self._frames())
        self.emitted += out.shape[1]
        return out

    def flush(self) -> Steps[np.ndarray]:
        """The rest of the offline output (the input ends here)."""
        if self.received == 0:
            return np.zeros((self.channels, 0), np.float32)
        self.buffer = np.concatenate([self.buffer, np.zeros((self.channels, self.n_fft // 2), np.float32)], axis=1)
        parts = [(yield from self._run(self._frames(), flush_frames=self.model.network_delay, final=True))]
        # the last frame's second half: only it covers those samples
        parts.append((self.tail / self.norm_end).astype(np.float32))
        out = np.concatenate(parts, axis=1)[:, : self.received - self.emitted]
        self.emitted += out.shape[1]
        return out


@lru_cache(maxsize=64)
def resampler_holdback(rate_in: int, rate_out: int) -> int:
    """The most output samples ``soxr.ResampleStream`` holds back behind its input (measured, plus one)."""
    stream = soxr.ResampleStream(rate_in, rate_out, 1, dtype="float32", quality=RESAMPLE_QUALITY)
    rng = np.random.default_rng(0)
    fed = produced = worst = 0
    for size in rng.integers(1, rate_in // 25, 200):
        produced += stream.resample_chunk(np.zeros(int(size), np.float32)).shape[0]
        fed += int(size)
        worst = max(worst, math.floor(fed * rate_out / rate_in) - produced)
    return worst + 1


class StreamingDenoiser:
    """One stream: float32 ``(n, channels)`` (or 1-D) samples at ``sample_rate`` in, the same count out.

    The output is the denoised input delayed by :attr:`delay` samples (zeros first); after the
    last push, :meth:`flush` returns the last :attr:`delay` samples (with fewer returned before,
    if the resamplers ever fell behind). Not thread-safe: one caller at a time.
    """

    def __init__(self, model: StreamingModel, sample_rate: int | None = None, channels: int = 1) -> None:
        rate = model.spec.sample_rate
        self.sample_rate = int(sample_rate or rate)
        if not MIN_RATE <= self.sample_rate <= MAX_RATE:
            raise ValueError(f"sample_rate must be {MIN_RATE}-{MAX_RATE} Hz, got {self.sample_rate}")
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels}")
        self.model, self.channels = model, channels
        self.resampled = self.sample_rate != rate
        if self.resampled:
            self._in = soxr.ResampleStream(self.sample_rate, rate, channels, dtype="float32", quality=RESAMPLE_QUALITY)
            self._out = soxr.ResampleStream(rate, self.sample_rate, channels, dtype="float32", quality=RESAMPLE_QUALITY)
            hold = (model.delay_samples + resampler_holdback(self.sample_rate, rate)) * self.sample_rate / rate
            self.delay = int(math.ceil(hold)) + resampler_holdback(rate, self.sample_rate) + 1
        else:
            self.delay = model.delay_samples
        self._core = _Core(model, channels)
        self._queue = np.zeros((self.delay, channels), np.float32)  # the delay's zeros, then the output
        self.samples_in = 0
        self.samples_out = 0
        self.flushed = False

    @property
    def latency_ms(self) -> float:
        return 1000.0 * self.delay / self.sample_rate

    def _shape(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x[:, np.newaxis]
        if x.ndim != 2 or x.shape[1] != self.channels:
            raise ValueError(f"expected (samples, {self.channels}) audio, got shape {x.shape}")
        return x

    def _through(self, x: np.ndarray, last: bool = False) -> Steps[np.ndarray]:
        """``(n, ch)`` at the stream's rate through resampler, core and resampler; content-aligned."""
        if self.resampled:
            x = self._in.resample_chunk(x, last=last)
            if x.ndim == 1:
                x = x[:, np.newaxis]
        y = (yield from self._core.push(x.T)).T if x.shape[0] else np.zeros((0, self.channels), np.float32)
        if last:
            y = np.concatenate([y, (yield from self._core.flush()).T], axis=0)
        if self.resampled:
            y = self._out.resample_chunk(np.ascontiguousarray(y), last=last)
            if y.ndim == 1:
                y = y[:, np.newaxis]
        return y

    def push(self, x: np.ndarray) -> np.ndarray:
        """Denoise the next samples; returns ``(len(x), channels)`` (fewer only if the resamplers lag)."""
        return run_steps(self.push_steps(x), self.model.step)

    def flush(self) -> np.ndarray:
        """End the stream: the remaining output, so that ``delay + samples_in`` samples came out in all."""
        return run_steps(self.flush_steps(), self.model.step)

    def push_steps(self, x: np.ndarray) -> Steps[np.ndarray]:
        """:meth:`push` as a step generator (see the module's doc)."""
        if self.flushed:
            raise RuntimeError("the stream was flushed: start a new StreamingDenoiser")
        x = self._shape(x)
        self.samples_in += x.shape[0]
        self._queue = np.concatenate([self._queue, (yield from self._through(x))], axis=0)
        n = min(self.samples_in - self.samples_out, self._queue.shape[0])  # this push's share, plus any owed
        out, self._queue = self._queue[:n], self._queue[n:]
        self.samples_out += n
        return out

    def flush_steps(self) -> Steps[np.ndarray]:
        """:meth:`flush` as a step generator (see the module's doc)."""
        if self.flushed:
            return np.zeros((0, self.channels), np.float32)
        self.flushed = True
        if self.samples_in == 0:
            return np.zeros((0, self.channels), np.float32)
        tail = yield from self._through(np.zeros((0, self.channels), np.float32), last=True)
        rest = np.concatenate([self._queue, tail], axis=0)
        want = self.delay + self.samples_in - self.samples_out
        if rest.shape[0] < want:
            rest = np.pad(rest, ((0, want - rest.shape[0]), (0, 0)))
        self._queue = np.zeros((0, self.channels), np.float32)
        self.samples_out += want
        return rest[:want]
