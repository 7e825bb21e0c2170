"""The streaming form of the band network: the same weights, run block by block with state.

:func:`build_bandnet_stream` turns a trained offline :func:`~training.models.bandnet.build_bandnet`
model into a Keras model that takes a block of ``B >= 1`` new feature frames plus the state
left by the previous call, and returns the masks for ``B`` frames plus the new state. It is
not the offline model re-run on overlapping windows: every frame goes through each layer once.

Why it is exact. Only the temporal blocks ``tcn{j}`` look ahead in time, and only they and
the optional causal context blocks ``enc{i}_ctx{k}`` and ``dec{i}_ctx{k}`` look along time; everything else
(band merge and spread, the ``(1, k)`` convolutions over frequency, LayerNorms over
channels, Dense layers, skips, the mask and a deep filter's taps) works frame by frame.
Block ``j`` pads its normalised input by ``(past_j, future_j)`` frames (:func:`~training.models.bandnet.time_padding`),
so it can give frame ``t`` once it has seen frame ``t + future_j``; in a stream it therefore
delays by ``future_j`` frames, and the bottleneck as a whole by ``L = sum_j future_j`` (the
model's lookahead, :func:`~training.models.bandnet.receptive_future`).

**Delay.** The call that receives input frames ``n .. n+B-1`` returns the masks for frames
``n-L .. n+B-1-L``. The masks for the ``L`` frames before the start of a stream (returned by
the first calls) are exactly zero. To end a stream, send ``L`` more frames (any features)
with ``valid = 0``: they stand for the zero padding the offline model puts after the last
frame, and the outputs of those calls are the last ``L`` real frames.

**Inputs** (``batch`` is free; the block axis ``B`` is dynamic):

- ``features``: ``(batch, n_freq, B, channels)``, the offline network's input layout;
- ``valid``: ``(batch, B)``, 1.0 for real frames, 0.0 for the flush frames at the end;
- one ``state_<name>`` per :class:`StateSpec`, ``(batch, *shape)``, zeros at the start
  (:meth:`StreamLayout.initial_state`).

**Outputs**: ``mask`` ``(batch, n_freq, B, out_channels)`` and ``next_state_<name>`` for
every state, to pass back in as ``state_<name>`` on the next call.

**State layout** (time-major; axis 0 of each shape is frames):

- ``valid``: ``(L,)`` the last ``L`` validity flags. Zeros at the start mark the frames
  before the stream as padding, so every block zeroes them in its history exactly as the
  offline zero padding does, however the delayed pipeline fills them;
- ``tcn{j}_conv``: ``(past_j + future_j, bottleneck)`` the last frames of block ``j``'s
  normalised (LayerNorm) input, i.e. its depthwise convolution's history;
- ``tcn{j}_res``: ``(future_j, bottleneck)`` for blocks with ``future_j > 0``: the residual
  path's delay line, so it meets the convolution's output for the same frame;
- ``enc{i}_ctx{k}``: ``((kt - 1) * d_k, freq_i, channels_i)`` the last input frames of
  encoder context block ``k`` at level ``i`` (zeros at the start, as the offline causal padding);
- ``dec{i}_ctx{k}``: the same for decoder context block ``k`` at level ``i``; its input lags
  the stream by ``L`` frames, and those before the start are zeroed (the offline causal padding);
- ``skip{i}``: ``(L, freq_i, channels_i)`` delay lines for the encoder outputs that the
  decoder adds back (``skip0`` is the band-merged, padded input), so they meet the
  bottleneck ``L`` frames later. Absent when ``L == 0``.

``lookahead=None`` (centred kernels) is refused: it has no bounded delay to stream with.
The implementation is Keras layers and ``keras.ops`` only (no numpy in the graph), so the
model converts to ONNX with tf2onnx (``training.export_stream``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import layers

from training.models.bandnet import BandConfig, context_past, receptive_future, time_padding

FEATURES = "features"
VALID = "valid"
MASK = "mask"
STATE_PREFIX = "state_"
NEXT_PREFIX = "next_state_"


# --------------------------------------------------------------------------- layers
@keras.saving.register_keras_serializable(package="rainclean_stream")
class FrameBuffer(layers.Layer):
    """``(state, x) -> (window, next_state)`` along the time axis 1: ``window`` is the
    ``frames`` remembered frames followed by the new ones, ``next_state`` its last ``frames``."""

    def __init__(self, frames: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if frames < 1:
            raise ValueError("a frame buffer holds at least one frame")
        self.frames = frames

    def call(self, state: keras.KerasTensor, x: keras.KerasTensor) -> tuple[keras.KerasTensor, keras.KerasTensor]:
        window = keras.ops.concatenate([state, x], axis=1)
        return window, window[:, -self.frames :]

    def compute_output_shape(self, state_shape: tuple[Any, ...], x_shape: tuple[Any, ...]) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
        length = None if x_shape[1] is None else x_shape[1] + self.frames
        return (x_shape[0], length, *x_shape[2:]), (x_shape[0], self.frames, *x_shape[2:])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "frames": self.frames}


@keras.saving.register_keras_serializable(package="rainclean_stream")
class FrameSlice(layers.Layer):
    """``x[:, start : len - drop_end]`` along the time axis 1 (static bounds, dynamic length)."""

    def __init__(self, start: int, drop_end: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start, self.drop_end = start, drop_end

    def call(self, x: keras.KerasTensor) -> keras.KerasTensor:
        return x[:, self.start : (-self.drop_end if self.drop_end else None)]

    def compute_output_shape(self, shape: tuple[Any, ...]) -> tuple[Any, ...]:
        length = None if shape[1] is None else shape[1] - self.start - self.drop_end
        return (shape[0], length, *shape[2:])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "start": self.start, "drop_end": self.drop_end}


@keras.saving.register_keras_serializable(package="rainclean_stream")
class MaskFrames(layers.Layer):
    """``x * valid``: zero the frames of ``x`` ``(batch, time, ...)`` whose ``valid`` ``(batch, time)`` is 0."""

    def call(self, x: keras.KerasTensor, valid: keras.KerasTensor) -> keras.KerasTensor:
        flags = keras.ops.cast(valid, x.dtype)
        for _ in range(len(x.shape) - 2):
            flags = keras.ops.expand_dims(flags, -1)
        return x * flags

    def compute_output_shape(self, x_shape: tuple[Any, ...], valid_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        return x_shape


# --------------------------------------------------------------------------- description
@dataclass(frozen=True)
class StateSpec:
    """One state tensor: input ``state_<name>``, output ``next_state_<name>``, shape ``(batch, *shape)``."""

    name: str
    #: without the batch axis; axis 0 is frames
    shape: tuple[int, ...]
    role: str

    @property
    def input_name(self) -> str:
        return STATE_PREFIX + self.name

    @property
    def output_name(self) -> str:
        return NEXT_PREFIX + self.name


@dataclass(frozen=True)
class StreamLayout:
    """What a caller needs to drive the streaming model (also written into the ONNX metadata)."""

    #: frames the output lags the input (the offline lookahead L)
    delay: int
    n_freq: int
    input_channels: int
    output_channels: int
    states: tuple[StateSpec, ...]

    def initial_state(self, batch: int = 1) -> dict[str, np.ndarray]:
        """Zero state, keyed by input name: the offline model's zero padding before frame 0."""
        return {s.input_name: np.zeros((batch, *s.shape), np.float32) for s in self.states}

    def to_dict(self) -> dict[str, Any]:
        return {
            "delay": self.delay, "n_freq": self.n_freq, "input_channels": self.input_channels,
            "output_channels": self.output_channels,
            "states": [{"name": s.name, "input": s.input_name, "output": s.output_name, "shape": ["batch", *s.shape], "role": s.role}
                       for s in self.states],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StreamLayout:
        states = tuple(StateSpec(s["name"], tuple(int(n) for n in s["shape"][1:]), s.get("role", "")) for s in d["states"])
        return cls(int(d["delay"]), int(d["n_freq"]), int(d["input_channels"]), int(d["output_channels"]), states)


@dataclass
class StreamingBandNet:
    """The streaming Keras model and its layout."""

    model: keras.Model
    layout: StreamLayout

    def initial_state(self, batch: int = 1) -> dict[str, np.ndarray]:
        return self.layout.initial_state(batch)

    def step(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One call: ``features``, ``valid`` and the ``state_*`` arrays in; ``mask`` and ``next_state_*`` out."""
        outputs = self.model(inputs, training=False)
        return {k: np.asarray(v) for k, v in outputs.items()}


# --------------------------------------------------------------------------- builder
def clone_has(model: keras.Model, name: str) -> bool:
    """Whether ``model`` has a layer called ``name``."""
    return any(layer.name == name for layer in model.layers)


class _Cloner:
    """Fresh copies of the offline model's layers (same class, config and name); their
    weights are copied by :meth:`copy_weights` once the new model has built them."""

    def __init__(self, offline: keras.Model) -> None:
        self.offline = offline
        self.pairs: list[tuple[layers.Layer, layers.Layer]] = []

    def __call__(self, name: str) -> layers.Layer:
        old = self.offline.get_layer(name)
        new = type(old).from_config(old.get_config())
        self.pairs.append((new, old))
        return new

    def has(self, name: str) -> bool:
        return clone_has(self.offline, name)

    def copy_weights(self) -> None:
        for new, old in self.pairs:
            new.set_weights(old.get_weights())


def build_bandnet_stream(offline: keras.Model, config: BandConfig) -> StreamingBandNet:
    """The streaming form of ``offline`` (built by ``build_bandnet(..., config)``), with its weights.

    Raises ``ValueError`` for ``config.lookahead=None`` (centred kernels cannot stream), for
    context blocks after the output level, and when ``offline``'s temporal padding does not
    match ``config``; and for a dual-path bottleneck (no streaming form yet).
    """
    if config.dual_path or clone_has(offline, "dp_in"):
        raise ValueError("a dual-path bottleneck (dual_path) has no streaming form")
    if config.lookahead is None:
        raise ValueError("lookahead=None centres the temporal kernels (unbounded delay in a stream): "
                         "a band network streams only with an integer lookahead")
    if config.output_context or clone_has(offline, "dec0_ctx0_tpad"):
        raise ValueError("context blocks after the output level (output_context) have no streaming form")
    if not any(layer.name == "tcn0_pad" for layer in offline.layers):
        raise ValueError(f"model {offline.name!r} is not a band network (no temporal block tcn0)")
    pads = time_padding(config.dilations, config.kernel_time, config.lookahead)
    delay = receptive_future(config)
    for j, pad in enumerate(pads):
        have = tuple(offline.get_layer(f"tcn{j}_pad").padding)
        if have != tuple(pad):
            raise ValueError(f"offline block tcn{j} pads {have}, config says {tuple(pad)}: wrong BandConfig for this model")
    if any(layer.name == f"tcn{len(pads)}_pad" for layer in offline.layers):
        raise ValueError("the offline model has more temporal blocks than config.dilations")
    for k, past in enumerate(context_past(config)):
        name = f"enc0_ctx{k}_tpad"
        if not any(layer.name == name for layer in offline.layers) or tuple(offline.get_layer(name).padding[0]) != (past, 0):
            raise ValueError(f"offline model has no encoder context block {k} reading {past} frames back: wrong BandConfig for this model")
    if any(layer.name == f"enc0_ctx{len(config.context)}_tpad" for layer in offline.layers):
        raise ValueError("the offline model has more encoder context blocks than config.context")
    for i in range(1, len(config.channels)):
        for k, past in enumerate(context_past(config, config.decoder_context)):
            name = f"dec{i}_ctx{k}_tpad"
            if not clone_has(offline, name) or tuple(offline.get_layer(name).padding[0]) != (past, 0):
                raise ValueError(f"offline model has no decoder context block {i}.{k} reading {past} frames back: wrong BandConfig for this model")
        if clone_has(offline, f"dec{i}_ctx{len(config.decoder_context)}_tpad"):
            raise ValueError("the offline model has more decoder context blocks than config.decoder_context")

    n_freq, in_ch = int(offline.input_shape[1]), int(offline.input_shape[3])
    out_ch = int(offline.output_shape[3])
    clone = _Cloner(offline)
    levels = len(config.channels)
    width = int(offline.get_layer("bn_in").output.shape[-1])
    states: list[StateSpec] = []
    inputs: dict[str, keras.KerasTensor] = {}
    outputs: dict[str, keras.KerasTensor] = {}

    def state(name: str, shape: tuple[int, ...], role: str) -> keras.KerasTensor:
        spec = StateSpec(name, tuple(int(n) for n in shape), role)
        states.append(spec)
        inputs[spec.input_name] = keras.Input(shape=spec.shape, name=spec.input_name)
        return inputs[spec.input_name]

    def buffered(name: str, x: keras.KerasTensor, frames: int, role: str) -> keras.KerasTensor:
        """``x`` preceded by its state of ``frames`` frames; the next state goes to the outputs."""
        window, nxt = FrameBuffer(frames, name=f"{name}_buffer")(state(name, (frames, *x.shape[2:]), role), x)
        outputs[NEXT_PREFIX + name] = layers.Identity(name=NEXT_PREFIX + name)(nxt)
        return window

    def delayed(name: str, x: keras.KerasTensor, frames: int, role: str) -> keras.KerasTensor:
        """``x`` delayed by ``frames`` frames through its own state."""
        if frames == 0:
            return x
        return FrameSlice(0, frames, name=f"{name}_delay")(buffered(name, x, frames, role))

    features = keras.Input(shape=(n_freq, None, in_ch), name=FEATURES)
    valid = keras.Input(shape=(None,), name=VALID)
    inputs[FEATURES], inputs[VALID] = features, valid
    # validity of frames n-L .. n+B-1; block j sees frames n-D_j .., the output frames n-L ..
    flags = buffered("valid", valid, delay, "validity of the last L input frames (0 before the start)") if delay else valid

    lagged: dict[int, keras.KerasTensor] = {}

    def flags_at(lag: int) -> keras.KerasTensor:
        """Validity of the frames that lag the input by ``lag``."""
        if not delay:
            return flags
        if lag not in lagged:
            lagged[lag] = FrameSlice(delay - lag, lag, name=f"valid_lag{lag}")(flags)
        return lagged[lag]

    # encoder: per frame
    x = clone("to_time_major")(features)
    x = clone("merge_bands")(x)
    x = clone("pad_bands")(x)
    skips = [x]
    for i in range(levels):
        x = clone(f"enc{i}_conv")(x)
        if config.conv_norm:
            x = clone(f"enc{i}_ln")(x)
        x = clone(f"enc{i}_act")(x)
        for k, past in enumerate(context_past(config)):  # causal: history from the state, no delay
            name = f"enc{i}_ctx{k}"
            y = buffered(name, x, past, f"encoder context block {i}.{k}: last {past} frames of its input") if past else x
            y = clone(f"{name}_fpad")(y)
            if clone.has(f"{name}_dw"):
                y = clone(f"{name}_dw")(y)
            y = clone(f"{name}_conv")(y)
            y = clone(f"{name}_act")(y)
            x = clone(f"{name}_res")([x, y])
        skips.append(x)
    x = clone("flatten_freq")(x)
    x = clone("bn_in")(x)

    # temporal blocks: the only layers with memory
    lag = 0  # frames block j's input lags the network input
    for j, (past, future) in enumerate(pads):
        y = clone(f"tcn{j}_ln")(x)
        y = MaskFrames(name=f"tcn{j}_valid")(y, flags_at(lag))  # frames outside the file are zero, as the offline padding
        if past + future:
            y = buffered(f"tcn{j}_conv", y, past + future, f"block {j}: last {past}+{future} frames of the normalised conv input")
        y = clone(f"tcn{j}_dw")(y)
        y = clone(f"tcn{j}_act")(y)
        y = clone(f"tcn{j}_pw")(y)
        res = delayed(f"tcn{j}_res", x, future, f"block {j}: residual path delayed by its {future} lookahead frames")
        x = clone(f"tcn{j}_res")([res, y])
        lag += future
    assert lag == delay and int(x.shape[-1]) == width

    # decoder: per frame, on skips delayed to meet the bottleneck
    x = clone("bn_out")(x)
    x = clone("unflatten_freq")(x)
    skips = [delayed(f"skip{i}", s, delay, f"encoder output {i} delayed by L frames") for i, s in enumerate(skips)]
    for i in reversed(range(levels)):
        x = clone(f"dec{i}_skip")([x, skips[i + 1]])
        x = clone(f"dec{i}_deconv")(x)
        if config.conv_norm:
            x = clone(f"dec{i}_ln")(x)
        x = clone(f"dec{i}_act")(x)
        for k, past in enumerate(context_past(config, config.decoder_context) if i > 0 else []):
            name = f"dec{i}_ctx{k}"
            # causal, on frames that lag by L: those before the start are the offline zero padding
            y = MaskFrames(name=f"{name}_valid")(x, flags_at(delay))
            y = buffered(name, y, past, f"decoder context block {i}.{k}: last {past} frames of its input") if past else y
            y = clone(f"{name}_fpad")(y)
            if clone.has(f"{name}_dw"):
                y = clone(f"{name}_dw")(y)
            y = clone(f"{name}_conv")(y)
            y = clone(f"{name}_act")(y)
            x = clone(f"{name}_res")([x, y])
    x = clone("out_skip")([x, skips[0]])
    x = clone("crop_bands")(x)
    features_out = x
    x = clone("mask_bands")(x)
    if clone.has("spread_bands"):  # complex mask: spread, then bound
        x = clone("spread_bands")(x)
    x = clone("mask")(x)
    if clone.has("df_spread"):  # deep-filter taps of the lowest bins, per frame as the mask
        t = clone("df_crop")(clone("df_spread")(clone("df_bands")(features_out)))
    elif clone.has("df_taps"):
        t = clone("df_bands")(clone("df_crop")(features_out))
    if clone.has("df_taps"):
        t = clone("df_taps")(t)
        t = clone("df_pad")(t)
        x = clone("mask_df")([x, t])
    x = MaskFrames(name="mask_valid")(x, flags_at(delay))  # zero masks for the L frames before the start
    mask = clone("to_freq_major")(x)

    model = keras.Model(inputs={FEATURES: features, VALID: valid, **{s.input_name: inputs[s.input_name] for s in states}},
                        outputs={MASK: mask, **{s.output_name: outputs[s.output_name] for s in states}},
                        name="bandnet_stream")
    clone.copy_weights()
    return StreamingBandNet(model, StreamLayout(delay, n_freq, in_ch, out_ch, tuple(states)))


# --------------------------------------------------------------------------- driving a stream
Step = Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]


def _blocks(total: int, sizes: Iterable[int]) -> Iterator[tuple[int, int]]:
    start, it = 0, iter(sizes)
    while start < total:
        size = max(1, min(int(next(it, total - start)), total - start))
        yield start, start + size
        start += size


def stream_features(step: Step, layout: StreamLayout, features: np.ndarray, block_sizes: Iterable[int]) -> np.ndarray:
    """Stream ``features`` ``(batch, n_freq, T, channels)`` through ``step`` in blocks of
    ``block_sizes`` frames (the rest in one block when they run out), flush with ``L``
    invalid frames, and return the masks aligned with the input, ``(batch, n_freq, T, out)``:
    what the offline model gives on the whole input.

    ``step`` is :meth:`StreamingBandNet.step` or an onnxruntime session's run wrapped to
    take and return dicts.
    """
    batch, _, total, channels = features.shape
    state = layout.initial_state(batch)
    masks = []

    def call(block: np.ndarray, flags: np.ndarray) -> None:
        nonlocal state
        out = step({FEATURES: block.astype(np.float32), VALID: flags, **state})
        masks.append(out[MASK])
        state = {s.input_name: out[s.output_name] for s in layout.states}

    for a, b in _blocks(total, block_sizes):
        call(features[:, :, a:b], np.ones((batch, b - a), np.float32))
    if layout.delay:
        call(np.zeros((batch, layout.n_freq, layout.delay, channels), np.float32), np.zeros((batch, layout.delay), np.float32))
    return np.concatenate(masks, axis=2)[:, :, layout.delay :]
