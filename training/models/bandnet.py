"""The band network: a convolutional encoder-decoder on ERB-compressed spectra with a
temporal convolutional bottleneck and a bounded lookahead.

Layout inside is ``(batch, time, freq, channels)``. The lowest ``linear_bins`` STFT bins
stay linear and the rest are merged into ``bands`` ERB bands by a fixed triangular
filterbank (257 bins -> 129 at the defaults). Two strided 2-D convolutions halve the
band axis twice; each frame's map is projected to a vector and passed through residual
blocks of dilated depthwise-separable 1-D convolutions along time; the decoder mirrors
the encoder with additive skips, and the output (a sigmoid magnitude mask or a bounded
complex mask) is spread back from bands to bins by the filterbank's transpose.

The bottleneck's temporal blocks look along time in both directions; the optional
``context`` blocks after each encoder level (and ``decoder_context`` blocks after each
decoder level but the output one) look back only (causal), so they add no delay, unless
``context_centred`` centres them as well (offline networks only). ``output_context`` adds
the same blocks after the output decoder level, at full band resolution (offline only).
``lookahead=None`` centres their kernels
(the output at frame t depends on frames up to t + sum of dilations); an integer L
makes them causal except for L frames of lookahead in total, given to the first blocks
whose dilation still fits, so the output at frame t depends on frames <= t + L only.
``dual_path`` replaces the flattened bottleneck with blocks that keep the band axis (a
depthwise dilated time convolution and a mix of all bands, each with a pointwise one); its
time padding is the temporal blocks'.
Time is never downsampled, so any frame count is legal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
from keras import layers

from training.models.default import BoundedComplexMask, bound_modulus
from training.models.slicing import Crop2D


@dataclass(frozen=True)
class BandConfig:
    """Sizes of the band network; ``lookahead`` None means centred temporal kernels."""

    linear_bins: int = 65
    bands: int = 64
    channels: tuple[int, ...] = (16, 24)
    kernel_freq: int = 5
    bottleneck: int = 192
    dilations: tuple[int, ...] = (1, 2, 4, 8, 1, 2, 4, 8)
    kernel_time: int = 3
    lookahead: int | None = 2
    #: LayerNorm on the 2-D maps (the temporal blocks always normalise): better steps, slower ones
    conv_norm: bool = False
    #: time dilations of causal residual time-frequency convolutions after each encoder level
    #: (none by default); they add local time context to the maps the decoder's skips carry
    context: tuple[int, ...] = ()
    #: (time, frequency) kernel of those convolutions; time taps reach back, never ahead
    context_kernel: tuple[int, int] = (3, 3)
    #: time dilations of the same causal blocks after each decoder level that feeds another
    #: (not the output level, whose maps are the largest); none by default
    decoder_context: tuple[int, ...] = ()
    #: time dilations of the same blocks after the output decoder level, at full band resolution
    #: (offline networks: the streaming form has none); none by default
    output_context: tuple[int, ...] = ()
    #: with ``context_separable``, the output level's context blocks stay full convolutions
    output_context_full: bool = False
    #: the nonlinearity of every block (a Keras activation name); ``relu`` fuses into the
    #: convolutions in onnxruntime, ``elu`` does not
    activation: str = "elu"
    #: context blocks as a depthwise time-frequency convolution then a 1x1 one across channels
    #: (about a sixth of the arithmetic of a full convolution at 24 channels) instead of one full
    #: convolution
    context_separable: bool = False
    #: with ``context_separable``, the encoder levels (0: the first, finest) whose context blocks
    #: stay full convolutions
    context_full_levels: tuple[int, ...] = ()
    #: context blocks (encoder and decoder) with centred time kernels, half their reach ahead;
    #: only with ``lookahead`` None, since they then add delay
    context_centred: bool = False
    #: channels of a dual-path bottleneck that keeps the band axis (0: the flattened temporal
    #: blocks); one block per ``dilations`` entry, each a time and a band sub-block
    dual_path: int = 0


def erb_rate(hz: np.ndarray) -> np.ndarray:
    """Glasberg and Moore's ERB-rate scale."""
    return 21.4 * np.log10(1.0 + 0.00437 * np.asarray(hz, dtype=np.float64))


def band_matrices(n_freq: int, linear_bins: int, bands: int, sample_rate: int = 16000) -> tuple[np.ndarray, np.ndarray]:
    """Fixed ``(n_freq, linear_bins + bands)`` merge and ``(linear_bins + bands, n_freq)`` spread matrices.

    The first ``linear_bins`` bins map one to one. Above them, triangular filters with
    centres spaced evenly on the ERB-rate scale (the first on bin ``linear_bins``, the last
    on the top bin) merge bins into bands; merge columns sum to one (a band is a weighted
    mean of its bins) and spread rows sum to one (a bin is a weighted mean of its bands),
    so a constant spectrum survives both ways.
    """
    high = n_freq - linear_bins
    if linear_bins < 0 or bands < 1 or high < bands:
        raise ValueError(f"cannot merge {high} bins into {bands} bands")
    hz = np.arange(n_freq) * sample_rate / (2.0 * (n_freq - 1))
    scale = erb_rate(hz[linear_bins:])
    centres = np.linspace(scale[0], scale[-1], bands)
    weights = np.zeros((high, bands))
    for b in range(bands):
        left = centres[b - 1] if b > 0 else centres[b] - 1e-9
        right = centres[b + 1] if b < bands - 1 else centres[b] + 1e-9
        rise = (scale - left) / max(centres[b] - left, 1e-9)
        fall = (right - scale) / max(right - centres[b], 1e-9)
        weights[:, b] = np.clip(np.minimum(rise, fall), 0.0, 1.0)
    weights[np.arange(high), np.argmax(weights, axis=1)] += 1e-6  # every bin belongs somewhere
    merge = np.zeros((n_freq, linear_bins + bands))
    merge[:linear_bins, :linear_bins] = np.eye(linear_bins)
    merge[linear_bins:, linear_bins:] = weights / weights.sum(axis=0, keepdims=True)
    spread = np.zeros((linear_bins + bands, n_freq))
    spread[:linear_bins, :linear_bins] = np.eye(linear_bins)
    spread[linear_bins:, linear_bins:] = (weights / weights.sum(axis=1, keepdims=True)).T
    return merge.astype(np.float32), spread.astype(np.float32)


@keras.saving.register_keras_serializable(package="rainclean")
class FreqMatrix(layers.Layer):
    """Multiply the frequency axis of a ``(batch, time, freq, channels)`` map by the fixed
    merge (bins -> bands) or spread (bands -> bins) matrix of :func:`band_matrices`."""

    def __init__(self, direction: str, n_freq: int, linear_bins: int, bands: int, sample_rate: int = 16000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if direction not in ("merge", "spread"):
            raise ValueError(f"direction must be 'merge' or 'spread', not {direction!r}")
        self.settings = {"direction": direction, "n_freq": n_freq, "linear_bins": linear_bins, "bands": bands, "sample_rate": sample_rate}
        merge, spread = band_matrices(n_freq, linear_bins, bands, sample_rate)
        self.matrix = merge if direction == "merge" else spread

    def call(self, x: keras.KerasTensor) -> keras.KerasTensor:
        matrix = keras.ops.convert_to_tensor(self.matrix, dtype=x.dtype)
        if x.shape[-1] == 1:
            # a one-channel map (the magnitude mask) skips the transposes: tf2onnx's optimiser
            # turns them into a wrong Reshape there (an einsum is exact but runs far slower)
            return keras.ops.expand_dims(keras.ops.matmul(keras.ops.squeeze(x, -1), matrix), -1)
        y = keras.ops.transpose(x, (0, 1, 3, 2))  # (B, T, C, F)
        y = keras.ops.matmul(y, matrix)
        return keras.ops.transpose(y, (0, 1, 3, 2))

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        return (input_shape[0], input_shape[1], self.matrix.shape[1], input_shape[3])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **self.settings}


@keras.saving.register_keras_serializable(package="rainclean")
class DeepFilterTaps(layers.Layer):
    """Bound each of ``order`` complex deep-filter taps (channel pairs) as
    :class:`~training.models.default.BoundedComplexMask` bounds a mask (:func:`bound_modulus`), with
    ``z`` offset by one on the tap of the current frame (``past``), so that near-zero outputs
    filter like the complex mask at initialisation."""

    def __init__(self, order: int, past: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.order, self.past = int(order), int(past)

    def call(self, x: keras.KerasTensor) -> keras.KerasTensor:
        shape = keras.ops.shape(x)
        z = keras.ops.reshape(x, (shape[0], shape[1], shape[2], self.order, 2))
        offset = np.zeros((self.order, 2))
        offset[self.past, 0] = 1.0
        return keras.ops.reshape(bound_modulus(z + keras.ops.convert_to_tensor(offset, dtype=x.dtype)), shape)

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "order": self.order, "past": self.past}


def time_padding(dilations: tuple[int, ...], kernel: int, lookahead: int | None) -> list[tuple[int, int]]:
    """(past, future) frames of padding for each temporal block.

    None centres every kernel; an integer L gives each block, in order, one tap of
    lookahead (``dilation`` frames) while that still fits in what is left of L, and keeps
    the rest causal, so the blocks' future padding sums to at most L.
    """
    span = kernel - 1
    if lookahead is None:
        return [(span * d - span * d // 2, span * d // 2) for d in dilations]
    if lookahead < 0:
        raise ValueError("lookahead must be >= 0 or None")
    left, pads = lookahead, []
    for d in dilations:
        taps = min(span, left // d)
        left -= taps * d
        pads.append((span * d - taps * d, taps * d))
    return pads


def receptive_future(config: BandConfig) -> int:
    """Frames after t that the output at frame t depends on (along the deepest path: every
    encoder level's context blocks, the temporal blocks, then the decoder levels')."""
    temporal = sum(future for _, future in time_padding(config.dilations, config.kernel_time, config.lookahead))
    if not config.context_centred:
        return temporal
    levels = len(config.channels)
    encoder = sum(future for _, future in context_padding(config)) * levels
    decoder = sum(future for _, future in context_padding(config, config.decoder_context)) * (levels - 1)
    output = sum(future for _, future in context_padding(config, config.output_context))
    return temporal + encoder + decoder + output


def context_padding(config: BandConfig, dilations: tuple[int, ...] | None = None) -> list[tuple[int, int]]:
    """(past, future) frames each ``context`` block (or each block of ``dilations``) reads:
    all past when causal, split as :func:`time_padding` splits a centred kernel with ``context_centred``."""
    span = config.context_kernel[0] - 1
    if config.context_centred and config.lookahead is not None:
        raise ValueError("centred context blocks need lookahead None: they look ahead")
    return [((span * d - span * d // 2, span * d // 2) if config.context_centred else (span * d, 0))
            for d in (config.context if dilations is None else dilations)]


def context_past(config: BandConfig, dilations: tuple[int, ...] | None = None) -> list[int]:
    """Frames of history each causal ``context`` block (or each block of ``dilations``) reads."""
    if config.context_centred:
        raise ValueError("centred context blocks have no causal (streaming) form")
    return [past for past, _ in context_padding(config, dilations)]


def _context_block(x: keras.KerasTensor, name: str, padding: tuple[int, int], config: BandConfig, dilation: int,
                   separable: bool) -> keras.KerasTensor:
    """``x + act(conv(x))`` with a time kernel padded ``padding`` (past, future) frames and a
    centred frequency kernel (``separable``: ``conv`` is a depthwise convolution then a 1x1 one)."""
    kt, kf = config.context_kernel
    if kt < 1 or kf < 1 or kf % 2 == 0:
        raise ValueError(f"context_kernel {config.context_kernel}: the time taps must be >= 1 and the frequency taps odd")
    y = layers.ZeroPadding2D((padding, (0, 0)), name=f"{name}_tpad")(x)
    y = layers.ZeroPadding2D(((0, 0), (kf // 2, kf // 2)), name=f"{name}_fpad")(y)
    if separable:
        y = layers.DepthwiseConv2D((kt, kf), dilation_rate=(dilation, 1), padding="valid", name=f"{name}_dw")(y)
        y = layers.Conv2D(int(x.shape[-1]), (1, 1), name=f"{name}_conv")(y)
    else:
        y = layers.Conv2D(int(x.shape[-1]), (kt, kf), dilation_rate=(dilation, 1), padding="valid", name=f"{name}_conv")(y)
    y = layers.Activation(config.activation, name=f"{name}_act")(y)
    return layers.Add(name=f"{name}_res")([x, y])


def _norm_act(x: keras.KerasTensor, name: str, norm: bool, activation: str) -> keras.KerasTensor:
    if norm:
        x = layers.LayerNormalization(axis=-1, epsilon=1e-5, name=f"{name}_ln")(x)
    return layers.Activation(activation, name=f"{name}_act")(x)


def _flat_bottleneck(x: keras.KerasTensor, config: BandConfig) -> keras.KerasTensor:
    """Each frame's ``(bands, channels)`` map flattened to one ``bottleneck``-wide vector, the
    residual dilated temporal blocks on it, and back to the map."""
    f_low, c_low = int(x.shape[2]), int(x.shape[3])
    x = layers.Reshape((-1, f_low * c_low), name="flatten_freq")(x)
    x = layers.Dense(config.bottleneck, name="bn_in")(x)
    for j, (d, (past, future)) in enumerate(zip(config.dilations, time_padding(config.dilations, config.kernel_time, config.lookahead))):
        y = layers.LayerNormalization(epsilon=1e-5, name=f"tcn{j}_ln")(x)
        y = layers.ZeroPadding1D((past, future), name=f"tcn{j}_pad")(y)
        y = layers.DepthwiseConv1D(config.kernel_time, dilation_rate=d, padding="valid", name=f"tcn{j}_dw")(y)
        y = layers.Activation(config.activation, name=f"tcn{j}_act")(y)
        y = layers.Dense(config.bottleneck, name=f"tcn{j}_pw")(y)
        x = layers.Add(name=f"tcn{j}_res")([x, y])
    x = layers.Dense(f_low * c_low, name="bn_out")(x)
    return layers.Reshape((-1, f_low, c_low), name="unflatten_freq")(x)


def _dual_path(x: keras.KerasTensor, config: BandConfig) -> keras.KerasTensor:
    """The ``(time, bands, channels)`` map projected to ``dual_path`` channels and through one
    block per dilation, keeping the band axis: a time sub-block (a depthwise dilated
    convolution along time, padded as :func:`time_padding` says) and a band sub-block (one
    learned mix of all bands, shared by the channels), each ``x + pointwise(act(mix(norm(x))))``
    with the norm over the bands of each frame and channel; then projected back."""
    bands, channels, width = int(x.shape[2]), int(x.shape[3]), config.dual_path
    x = layers.Conv2D(width, (1, 1), name="dp_in")(x)
    for j, (d, (past, future)) in enumerate(zip(config.dilations, time_padding(config.dilations, config.kernel_time, config.lookahead))):
        y = layers.LayerNormalization(axis=2, epsilon=1e-5, name=f"dp{j}_tln")(x)
        y = layers.ZeroPadding2D(((past, future), (0, 0)), name=f"dp{j}_tpad")(y)
        y = layers.DepthwiseConv2D((config.kernel_time, 1), dilation_rate=(d, 1), padding="valid", name=f"dp{j}_tdw")(y)
        y = layers.Activation(config.activation, name=f"dp{j}_tact")(y)
        x = layers.Add(name=f"dp{j}_tres")([x, layers.Conv2D(width, (1, 1), name=f"dp{j}_tpw")(y)])
        y = layers.LayerNormalization(axis=2, epsilon=1e-5, name=f"dp{j}_fln")(x)
        y = layers.Permute((1, 3, 2), name=f"dp{j}_fperm")(y)  # (B, T, C, bands)
        y = layers.Dense(bands, name=f"dp{j}_fmix")(y)
        y = layers.Permute((1, 3, 2), name=f"dp{j}_funperm")(y)
        y = layers.Activation(config.activation, name=f"dp{j}_fact")(y)
        x = layers.Add(name=f"dp{j}_fres")([x, layers.Conv2D(width, (1, 1), name=f"dp{j}_fpw")(y)])
    return layers.Conv2D(channels, (1, 1), name="dp_out")(x)


def build_bandnet(n_freq: int = 257, config: BandConfig = BandConfig(), complex_mask: bool = True, sample_rate: int = 16000,
                  df_bins: int = 0, df_order: int = 5, df_past: int = 2) -> keras.Model:
    """Build the band network for ``n_freq`` bins and any frame count: a complex mask from
    three input channels, or (``complex_mask=False``) a magnitude mask from one. With
    ``df_bins`` (complex mask only), ``2 * df_order`` more output channels hold the
    deep-filter taps of the lowest ``df_bins`` bins (zeros above them): computed per bin on
    the linear bins, and per band then spread to bins as the mask is where ``df_bins`` reaches
    past ``linear_bins``."""
    if df_bins and not (complex_mask and 0 < df_bins <= n_freq and 0 <= df_past < df_order):
        raise ValueError(f"a deep filter needs a complex mask, 0 < df_bins <= n_freq ({n_freq}) "
                         f"and 0 <= past < order; got df_bins {df_bins}, order {df_order}, past {df_past}")
    if config.context_full_levels and not (config.context_separable and set(config.context_full_levels) <= set(range(len(config.channels)))):
        raise ValueError(f"context_full_levels {config.context_full_levels}: encoder levels (0 to {len(config.channels) - 1}) "
                         "of a network whose context blocks are otherwise separable")
    n_band = config.linear_bins + config.bands
    bands = {"n_freq": n_freq, "linear_bins": config.linear_bins, "bands": config.bands, "sample_rate": sample_rate}
    levels = len(config.channels)
    step = 2**levels
    padded = -(-n_band // step) * step
    in_ch = 3 if complex_mask else 1
    inputs = keras.Input(shape=(n_freq, None, in_ch), name="features")
    x = layers.Permute((2, 1, 3), name="to_time_major")(inputs)  # (B, T, F, C)
    x = FreqMatrix("merge", **bands, name="merge_bands")(x)
    x = layers.ZeroPadding2D(((0, 0), (0, padded - n_band)), name="pad_bands")(x)
    skips = [x]
    for i, ch in enumerate(config.channels):
        x = layers.Conv2D(ch, (1, config.kernel_freq), strides=(1, 2), padding="same", name=f"enc{i}_conv")(x)
        x = _norm_act(x, f"enc{i}", config.conv_norm, config.activation)
        for k, (d, padding) in enumerate(zip(config.context, context_padding(config))):
            x = _context_block(x, f"enc{i}_ctx{k}", padding, config, d, config.context_separable and i not in config.context_full_levels)
        skips.append(x)
    x = _dual_path(x, config) if config.dual_path else _flat_bottleneck(x, config)
    for i in reversed(range(levels)):
        x = layers.Add(name=f"dec{i}_skip")([x, skips[i + 1]])
        out_ch = config.channels[i - 1] if i > 0 else config.channels[0]
        x = layers.Conv2DTranspose(out_ch, (1, config.kernel_freq), strides=(1, 2), padding="same", name=f"dec{i}_deconv")(x)
        x = _norm_act(x, f"dec{i}", config.conv_norm, config.activation)
        dilations = config.decoder_context if i > 0 else config.output_context
        separable = config.context_separable and (i > 0 or not config.output_context_full)
        for k, (d, padding) in enumerate(zip(dilations, context_padding(config, dilations))):
            x = _context_block(x, f"dec{i}_ctx{k}", padding, config, d, separable)
    x = layers.Concatenate(name="out_skip")([x, skips[0]])
    x = Crop2D(((0, 0), (0, padded - n_band)), name="crop_bands")(x)
    if complex_mask:
        features = x
        x = layers.Conv2D(2, (1, 1), name="mask_bands")(x)
        x = FreqMatrix("spread", **bands, name="spread_bands")(x)
        x = BoundedComplexMask(name="mask")(x)
        if df_bins and df_bins <= config.linear_bins:
            # the lowest bands are the linear bins: their taps need no spreading
            t = Crop2D(((0, 0), (0, n_band - df_bins)), name="df_crop")(features)
            t = layers.Conv2D(2 * df_order, (1, 1), name="df_bands")(t)
        elif df_bins:
            t = layers.Conv2D(2 * df_order, (1, 1), name="df_bands")(features)
            t = FreqMatrix("spread", **bands, name="df_spread")(t)
            t = Crop2D(((0, 0), (0, n_freq - df_bins)), name="df_crop")(t)
        if df_bins:
            t = DeepFilterTaps(df_order, df_past, name="df_taps")(t)
            t = layers.ZeroPadding2D(((0, 0), (0, n_freq - df_bins)), name="df_pad")(t)
            x = layers.Concatenate(name="mask_df")([x, t])
    else:
        x = layers.Conv2D(1, (1, 1), activation="sigmoid", name="mask_bands")(x)
        x = FreqMatrix("spread", **bands, name="mask")(x)
    outputs = layers.Permute((2, 1, 3), name="to_freq_major")(x)
    return keras.Model(inputs, outputs, name="bandnet")
