"""The trained band network written straight to an ONNX graph in channels-first layout.

tf2onnx keeps Keras's channels-last layout and wraps every convolution in transposes, and
onnxruntime's CPU convolutions then convert between layouts around each of them. This module
reads the trained layers' weights and writes the same function with the 2-D maps as
``(batch, channels, time, bands)``, the layout onnxruntime's convolutions use:

- the bins-to-bands matrix (zero columns for the padded bands) turns the input into that
  layout with one transpose;
- every padding is the convolution's own (causal time padding included), so the encoder
  and the decoder's convolutions follow each other without layout changes;
- the decoder's stride-2 transposed convolutions become sub-pixel convolutions
  (:func:`training.models.subpixel.subpixel_weights`); the last one's two output phases are
  never interleaved: the output convolution mixes channels per phase, and the bands-to-bins
  matrix, its rows reordered to match, puts every band back in place (the skip from the
  input is gathered into the same order);
- the temporal blocks run on ``(batch, time, features)`` with onnxruntime's fused layer norm.

It gives the network's output to float rounding; :func:`training.export.check_parity`
checks every export against the Keras network.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from training.models.bandnet import band_matrices
from training.models.subpixel import subpixel_weights

ACTIVATIONS = {"relu": "Relu", "elu": "Elu"}


class UnsupportedNetwork(ValueError):
    """The network is not a band network this writer can express."""


class _Graph:
    """Nodes and initialisers of one ONNX graph, with generated tensor names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, value: np.ndarray, hint: str = "c", dtype: Any = np.float32) -> str:
        name = self._name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, *inputs: str, outputs: int = 1, hint: str | None = None, **attrs: Any) -> Any:
        names = [self._name(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, **attrs))
        return names[0] if outputs == 1 else names

    def reshape(self, x: str, shape: list[int]) -> str:
        return self.op("Reshape", x, self.const(np.array(shape), "shape", np.int64))

    def act(self, x: str, activation: str) -> str:
        return self.op(ACTIVATIONS[activation], x)

    def conv(self, x: str, kernel: np.ndarray, bias: np.ndarray | None, **attrs: Any) -> str:
        """A convolution with an ONNX-layout kernel ``(out, in / group, *spatial)``."""
        inputs = [x, self.const(kernel, "w")] + ([self.const(bias, "b")] if bias is not None else [])
        return self.op("Conv", *inputs, kernel_shape=list(kernel.shape[2:]), **attrs)

    def dense(self, x: str, kernel: np.ndarray, bias: np.ndarray) -> str:
        return self.op("Add", self.op("MatMul", x, self.const(kernel, "w")), self.const(bias, "b"))

    def mix_channels(self, x: str, weights: np.ndarray, bands: int) -> str:
        """``weights`` ``(out, in)`` across the channels of ``(B, in, T, bands)``, as one product
        over the flattened maps: for the few channels of the input skip, a 1x1 convolution
        would run in onnxruntime's blocked layout, 16 outputs at a time."""
        y = self.op("MatMul", self.const(weights, "mix"), self.reshape(x, [0, weights.shape[1], -1]))
        return self.reshape(y, [0, weights.shape[0], -1, bands])


def _layer(net: keras.Model, name: str) -> keras.layers.Layer | None:
    try:
        return net.get_layer(name)
    except ValueError:
        return None


def _activation(net: keras.Model, name: str) -> str:
    activation = net.get_layer(name).get_config()["activation"]
    if activation not in ACTIVATIONS or (activation == "elu" and net.get_layer(name).get_config().get("alpha", 1.0) != 1.0):
        raise UnsupportedNetwork(f"activation {activation!r} of {name}")
    return activation


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's ``same`` padding (before, after) along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _conv2d_kernel(kernel: np.ndarray) -> np.ndarray:
    """Keras ``(kh, kw, in, out)`` to ONNX ``(out, in, kh, kw)``."""
    return np.transpose(kernel, (3, 2, 0, 1))


def _context_blocks(g: _Graph, net: keras.Model, prefix: str, x: str) -> str:
    """``x`` through the context blocks ``{prefix}_ctx{k}`` that follow it, if any."""
    k = 0
    while _layer(net, f"{prefix}_ctx{k}_conv") is not None:
        name = f"{prefix}_ctx{k}"
        ctx = net.get_layer(f"{name}_conv")
        past, future = net.get_layer(f"{name}_tpad").padding[0]
        left, right = net.get_layer(f"{name}_fpad").padding[1]
        dw = _layer(net, f"{name}_dw")
        if dw is None:
            w, b = ctx.get_weights()
            y = g.conv(x, _conv2d_kernel(w), b, dilations=list(ctx.dilation_rate), pads=[past, left, future, right])
        else:  # depthwise (Keras kernel (kt, kf, C, 1)), then 1x1 across channels
            w, b = dw.get_weights()
            y = g.conv(x, np.transpose(w, (2, 3, 0, 1)), b, group=w.shape[2], dilations=list(dw.dilation_rate), pads=[past, left, future, right])
            w, b = ctx.get_weights()
            y = g.conv(y, _conv2d_kernel(w), b)
        x = g.op("Add", x, g.act(y, _activation(net, f"{name}_act")))
        k += 1
    return x


def _encoder(g: _Graph, net: keras.Model, x: str, freq: int) -> tuple[str, list[str], int]:
    """Strided convolutions (and their context blocks) level by level: the last map, the
    skips (the input's first) and the band count of the last level."""
    skips, level = [x], 0
    while _layer(net, f"enc{level}_conv") is not None:
        kernel, bias = net.get_layer(f"enc{level}_conv").get_weights()
        before, after = _same_padding(freq, kernel.shape[1], 2)
        x = g.conv(x, _conv2d_kernel(kernel), bias, strides=[1, 2], pads=[0, before, 0, after])
        x = _context_blocks(g, net, f"enc{level}", g.act(x, _activation(net, f"enc{level}_act")))
        freq = -(-freq // 2)
        skips.append(x)
        level += 1
    if level == 0:
        raise UnsupportedNetwork("no encoder levels")
    return x, skips, freq


def _bottleneck(g: _Graph, net: keras.Model, x: str, channels: int, freq: int) -> str:
    """``(B, C, T, F)`` to one vector per frame, the temporal blocks, and back to ``(B, C, T, F)``;
    the Dense layers' rows and columns are reordered from Keras's ``f * C + c`` to ``c * F + f``."""
    width = int(net.get_layer("bn_in").units)
    w_in, b_in = net.get_layer("bn_in").get_weights()
    w_in = w_in.reshape(freq, channels, width).transpose(1, 0, 2).reshape(channels * freq, width)
    x = g.dense(g.reshape(g.op("Transpose", x, perm=[0, 2, 1, 3]), [0, 0, channels * freq]), w_in, b_in)
    j = 0
    while _layer(net, f"tcn{j}_ln") is not None:
        norm = net.get_layer(f"tcn{j}_ln")
        gamma, beta = norm.get_weights()
        y = g.op("LayerNormalization", x, g.const(gamma, "gamma"), g.const(beta, "beta"), axis=-1, epsilon=float(norm.epsilon))
        past, future = net.get_layer(f"tcn{j}_pad").padding
        dw = net.get_layer(f"tcn{j}_dw")
        kernel, bias = dw.get_weights()  # (k, width, 1), (width,)
        y = g.op("Transpose", y, perm=[0, 2, 1])  # (B, width, T)
        y = g.conv(y, kernel[:, :, 0].T[:, None, :], bias, group=width, dilations=list(dw.dilation_rate), pads=[past, future])
        y = g.op("Transpose", g.act(y, _activation(net, f"tcn{j}_act")), perm=[0, 2, 1])
        x = g.op("Add", x, g.dense(y, *net.get_layer(f"tcn{j}_pw").get_weights()))
        j += 1
    w_out, b_out = net.get_layer("bn_out").get_weights()
    w_out = w_out.reshape(width, freq, channels).transpose(0, 2, 1).reshape(width, channels * freq)
    x = g.dense(x, w_out, b_out.reshape(freq, channels).T.reshape(-1))
    return g.op("Transpose", g.reshape(x, [0, 0, channels, freq]), perm=[0, 2, 1, 3])


def _dual_path(g: _Graph, net: keras.Model, x: str) -> str:
    """The dual-path bottleneck on ``(B, C, T, F)`` as it is: 1x1 and depthwise time
    convolutions, the band mix as a product on the last axis, each norm over that axis."""

    def norm(y: str, name: str) -> str:
        layer = net.get_layer(name)
        gamma, beta = layer.get_weights()
        return g.op("LayerNormalization", y, g.const(gamma, "gamma"), g.const(beta, "beta"), axis=-1, epsilon=float(layer.epsilon))

    def pointwise(y: str, name: str) -> str:
        w, b = net.get_layer(name).get_weights()
        return g.conv(y, _conv2d_kernel(w), b)

    x = pointwise(x, "dp_in")
    j = 0
    while _layer(net, f"dp{j}_tln") is not None:
        past, future = net.get_layer(f"dp{j}_tpad").padding[0]
        dw = net.get_layer(f"dp{j}_tdw")
        w, b = dw.get_weights()  # (k, 1, C, 1)
        y = g.conv(norm(x, f"dp{j}_tln"), np.transpose(w, (2, 3, 0, 1)), b, group=w.shape[2],
                   dilations=list(dw.dilation_rate), pads=[past, 0, future, 0])
        x = g.op("Add", x, pointwise(g.act(y, _activation(net, f"dp{j}_tact")), f"dp{j}_tpw"))
        y = g.dense(norm(x, f"dp{j}_fln"), *net.get_layer(f"dp{j}_fmix").get_weights())
        x = g.op("Add", x, pointwise(g.act(y, _activation(net, f"dp{j}_fact")), f"dp{j}_fpw"))
        j += 1
    return pointwise(x, "dp_out")


def _decoder(g: _Graph, net: keras.Model, x: str, skips: list[str], freq: int) -> tuple[str, int, int]:
    """Skip, sub-pixel convolution and context blocks level by level. Inner levels interleave
    their two phases; the last level's map is returned phase by phase, ``(B, 2 * C, T, F)``
    (even bands' channels, then odd's), with ``C`` and ``F`` (interleaved for its context
    blocks and split into phases again, if it has any)."""
    channels = 0
    for i in reversed(range(len(skips) - 1)):
        x = g.op("Add", x, skips[i + 1])
        kernel, bias = net.get_layer(f"dec{i}_deconv").get_weights()
        size, sub_kernel, sub_bias = subpixel_weights(kernel, bias)
        x = g.conv(x, _conv2d_kernel(sub_kernel), sub_bias, pads=[0, size // 2, 0, size // 2])
        x = g.act(x, _activation(net, f"dec{i}_act"))
        channels = kernel.shape[2]
        if i > 0:  # interleave: band 2m + q is phase q's band m
            x = _context_blocks(g, net, f"dec{i}", _interleave(g, x, channels, freq))
            freq *= 2
        elif _layer(net, "dec0_ctx0_conv") is not None:  # blocks at full resolution, then back to phases
            x = _phases(g, _context_blocks(g, net, "dec0", _interleave(g, x, channels, freq)), channels, freq)
    return x, channels, freq


def _interleave(g: _Graph, x: str, channels: int, freq: int) -> str:
    """Phases ``(B, 2 * C, T, F)`` (even bands' channels, then odd's) to ``(B, C, T, 2 * F)`` in band order."""
    x = g.op("Transpose", g.reshape(x, [0, 2, channels, -1, freq]), perm=[0, 2, 3, 4, 1])
    return g.reshape(x, [0, channels, -1, 2 * freq])


def _phases(g: _Graph, x: str, channels: int, freq: int) -> str:
    """The inverse of :func:`_interleave`: ``(B, C, T, 2 * F)`` in band order to phases ``(B, 2 * C, T, F)``."""
    x = g.op("Transpose", g.reshape(x, [0, channels, -1, freq, 2]), perm=[0, 4, 1, 2, 3])
    return g.reshape(x, [0, 2 * channels, -1, freq])


def _by_phase(kernel: np.ndarray, channels: int) -> np.ndarray:
    """A 1x1 kernel ``(in, out)`` over the decoder's ``channels`` applied to both phases at once:
    ``(2 * out, 2 * channels, 1, 1)``, phase 0's outputs first."""
    n_out = kernel.shape[1]
    by_phase = np.zeros((2 * n_out, 2 * channels, 1, 1), np.float32)
    for q in (0, 1):
        by_phase[q * n_out:(q + 1) * n_out, q * channels:(q + 1) * channels, 0, 0] = kernel[:channels].T
    return by_phase


def _output_conv(g: _Graph, layer: keras.layers.Layer, phases: str, channels: int, freq: int, first_skip: str) -> tuple[str, np.ndarray]:
    """A 1x1 output convolution on the last decoder level's phases and the input skip:
    ``(B, out, T, padded bands)`` in phase order, and that order (position ``p = q * freq + m``
    holds band ``2m + q``; the input skip is gathered into it)."""
    kernel, bias = layer.get_weights()
    kernel = kernel[0, 0]  # (channels + input channels, out)
    n_out = kernel.shape[1]
    by_phase = g.conv(phases, _by_phase(kernel, channels), np.concatenate([bias, bias]))  # the bias in the convolution
    even, odd = g.op("Split", by_phase, g.const(np.array([n_out, n_out]), "split", np.int64), axis=1, outputs=2)
    y = g.op("Concat", even, odd, axis=3)  # (B, out, T, padded bands), phase order
    order = np.array([2 * m + q for q in (0, 1) for m in range(freq)])
    from_input = g.mix_channels(first_skip, kernel[channels:].T, len(order))  # (B, out, T, padded bands)
    return g.op("Add", y, g.op("Gather", from_input, g.const(order, "order", np.int64), axis=3)), order


def _bound(g: _Graph, z: str, axis: int) -> str:
    """``z tanh(r) / r`` with ``r`` the norm over ``axis`` (the real and imaginary parts), as
    BoundedComplexMask and DeepFilterTaps; the squares are summed part by part, which
    onnxruntime runs faster than a reduction over a short axis."""
    real, imag = g.op("Split", z, g.const(np.array([1, 1]), "parts", np.int64), axis=axis, outputs=2)
    squares = g.op("Add", g.op("Mul", real, real), g.op("Mul", imag, imag))
    r = g.op("Sqrt", g.op("Add", squares, g.const(np.array(1e-8), "eps")))
    return g.op("Mul", z, g.op("Div", g.op("Tanh", r), r))


def _head(g: _Graph, net: keras.Model, phases: str, channels: int, freq: int, first_skip: str, spread: np.ndarray,
          complex_mask: bool) -> str:
    """The output convolution, spread to bins and bounded: ``(B, out, T, bins)``; the spread
    matrix's rows follow the phase order."""
    y, order = _output_conv(g, net.get_layer("mask_bands"), phases, channels, freq, first_skip)
    spread_padded = np.zeros((len(order), spread.shape[1]), np.float32)
    spread_padded[: spread.shape[0]] = spread
    spread_phases = g.const(spread_padded[order], "spread_phases")
    if not complex_mask:
        return g.op("MatMul", g.op("Sigmoid", y), spread_phases)
    z = g.op("Add", g.op("MatMul", y, spread_phases), g.const(np.array([1.0, 0.0])[:, None, None], "offset"))
    return _bound(g, z, axis=1)


def _slice(g: _Graph, x: str, start: int, end: int, axis: int, step: int = 1) -> str:
    i64 = np.int64
    return g.op("Slice", x, g.const(np.array([start]), "s", i64), g.const(np.array([end]), "e", i64),
                g.const(np.array([axis]), "a", i64), g.const(np.array([step]), "st", i64))


def _deep_filter_head(g: _Graph, net: keras.Model, phases: str, channels: int, freq: int, first_skip: str,
                      channels_first: bool = False) -> str:
    """The deep-filter taps of the lowest ``df_bins`` bins, bounded tap by tap, in the output's
    layout ``(B, df_bins, T, 2 * order)``, as ``df_crop``, ``df_bands`` and ``df_taps`` (the
    Keras network's ``df_pad`` zeros above them are left out). Only the filtered bands are
    computed, even bands then odd ones (the phases' own order), and put in band order by a
    product with a permutation matrix, which is exact and which onnxruntime runs faster than a
    gather along the innermost axis."""
    taps = net.get_layer("df_taps")
    df_bins = int(net.get_layer("df_crop").output.shape[2])
    if _layer(net, "df_spread") is not None:
        return _spread_deep_filter_head(g, net, phases, channels, freq, first_skip, df_bins, channels_first)
    kernel, bias = net.get_layer("df_bands").get_weights()
    kernel = kernel[0, 0]  # (channels + input channels, 2 * order)
    n_out = kernel.shape[1]
    even, odd = (df_bins + 1) // 2, df_bins // 2  # band 2m from phase 0 at m, band 2m + 1 from phase 1 at m
    y = g.conv(_slice(g, phases, 0, even, axis=3), _by_phase(kernel, channels), np.concatenate([bias, bias]))  # (B, 2 * n_out, T, even)
    y_even, y_odd = g.op("Split", y, g.const(np.array([n_out, n_out]), "split", np.int64), axis=1, outputs=2)
    y = g.op("Concat", y_even, _slice(g, y_odd, 0, odd, axis=3), axis=3)  # (B, n_out, T, df_bins), evens then odds
    to_bands = np.zeros((df_bins, df_bins), np.float32)
    to_bands[[b // 2 if b % 2 == 0 else even + b // 2 for b in range(df_bins)], np.arange(df_bins)] = 1.0
    y = g.op("MatMul", y, g.const(to_bands, "df_band_order"))  # band order
    skip = _slice(g, first_skip, 0, df_bins, axis=3)
    y = g.op("Add", y, g.mix_channels(skip, kernel[channels:].T, df_bins))
    return _bound_taps(g, y, taps, df_bins, channels_first)


def _bound_taps(g: _Graph, y: str, taps: keras.layers.Layer, df_bins: int, channels_first: bool = False) -> str:
    """``(B, 2 * order, T, df_bins)`` taps offset and bounded as ``df_taps``, with the bins
    innermost (broadcasting over a trailing axis of one or two elements runs element by
    element in onnxruntime); returns them in that layout if ``channels_first``, else
    ``(B, df_bins, T, 2 * order)``."""
    offset = np.zeros((taps.order, 2, 1, 1), np.float32)
    offset[taps.past, 0] = 1.0
    z = _bound(g, g.op("Add", g.reshape(y, [0, taps.order, 2, -1, df_bins]), g.const(offset, "df_offset")), axis=2)
    z = g.reshape(z, [0, 2 * taps.order, -1, df_bins])
    return z if channels_first else g.op("Transpose", z, perm=[0, 3, 2, 1])


def _spread_deep_filter_head(g: _Graph, net: keras.Model, phases: str, channels: int, freq: int, first_skip: str,
                             df_bins: int, channels_first: bool = False) -> str:
    """The deep-filter taps computed per band and spread to the lowest ``df_bins`` bins, as
    ``df_bands``, ``df_spread``, ``df_crop`` and ``df_taps``: ``(B, df_bins, T, 2 * order)``."""
    y, order = _output_conv(g, net.get_layer("df_bands"), phases, channels, freq, first_skip)
    settings = net.get_layer("df_spread").settings
    spread = band_matrices(settings["n_freq"], settings["linear_bins"], settings["bands"], settings["sample_rate"])[1]
    spread_padded = np.zeros((len(order), df_bins), np.float32)
    spread_padded[: spread.shape[0]] = spread[:, :df_bins]
    y = g.op("MatMul", y, g.const(spread_padded[order], "df_spread_phases"))  # (B, 2 * order, T, df_bins)
    return _bound_taps(g, y, net.get_layer("df_taps"), df_bins, channels_first)


def bandnet_to_onnx(net: keras.Model, opset: int = 17, input_name: str = "features", output_name: str = "mask",
                    channels_first: bool = False, taps_name: str = "taps") -> onnx.ModelProto:
    """The band network ``net`` (from :func:`training.models.bandnet.build_bandnet`) as an ONNX
    model with dynamic batch and frame axes; :class:`UnsupportedNetwork` if it is not one
    this writer covers (normalised 2-D maps, or another network).

    Input and output are ``(batch, bins, frames, channels)`` as in Keras, or
    ``(batch, channels, frames, bins)`` if ``channels_first``, the layout the graph computes
    in, so that no transpose is needed at either end. A network with a deep-filter head has
    two outputs: the complex mask (``output_name``, two channels) and the taps of the lowest
    ``df_bins`` bins alone (``taps_name``, ``2 * order`` channels), which Keras pads with zeros
    to every bin and concatenates after the mask."""
    if net.name != "bandnet" or _layer(net, "merge_bands") is None:
        raise UnsupportedNetwork(f"{net.name} is not a band network")
    if _layer(net, "enc0_ln") is not None:
        raise UnsupportedNetwork("normalised 2-D maps (conv_norm)")
    settings = net.get_layer("merge_bands").settings
    n_freq, n_in = int(net.input.shape[1]), int(net.input.shape[3])
    merge, spread = band_matrices(settings["n_freq"], settings["linear_bins"], settings["bands"], settings["sample_rate"])
    padded = merge.shape[1] + net.get_layer("pad_bands").padding[1][1]
    merge_padded = np.zeros((n_freq, padded), np.float32)
    merge_padded[:, : merge.shape[1]] = merge

    g = _Graph()
    linear = settings["linear_bins"]
    block_diagonal = (linear > 0 and np.array_equal(merge_padded[:linear, :linear], np.eye(linear))
                      and not merge_padded[linear:, :linear].any() and not merge_padded[:linear, linear:].any())
    if channels_first and block_diagonal:  # the linear bins as they are, the rest merged into bands (and the padding)
        high = g.op("MatMul", _slice(g, input_name, linear, n_freq, axis=3), g.const(merge_padded[linear:, linear:], "merge"))
        x = g.op("Concat", _slice(g, input_name, 0, linear, axis=3), high, axis=3)  # (B, C, T, bands)
    elif channels_first:
        x = g.op("MatMul", input_name, g.const(merge_padded, "merge"))  # (B, C, T, bands)
    else:  # bins to bands on the input's own layout, then one transpose of the smaller result
        x = g.op("MatMul", g.const(merge_padded.T, "merge"), g.reshape(input_name, [0, n_freq, -1]))  # (B, bands, T * C)
        x = g.op("Transpose", g.reshape(x, [0, padded, -1, n_in]), perm=[0, 3, 2, 1])  # (B, C, T, bands)
    x, skips, freq = _encoder(g, net, x, padded)
    if _layer(net, "dp_in") is not None:
        x = _dual_path(g, net, x)
    else:
        x = _bottleneck(g, net, x, int(net.get_layer(f"enc{len(skips) - 2}_conv").filters), freq)
    x, channels, freq = _decoder(g, net, x, skips, freq)
    y = _head(g, net, x, channels, freq, skips[0], spread, complex_mask=_layer(net, "spread_bands") is not None)
    if not channels_first:
        y = g.op("Transpose", y, perm=[0, 3, 2, 1])
    deep_filter = _layer(net, "df_bands") is not None
    outputs = {output_name: (y, 2 if deep_filter else int(net.output.shape[3]), n_freq)}  # name: (tensor, channels, bins)
    if deep_filter:
        taps = _deep_filter_head(g, net, x, channels, freq, skips[0], channels_first)
        outputs[taps_name] = (taps, 2 * net.get_layer("df_taps").order, int(net.get_layer("df_crop").output.shape[2]))
    for name, (tensor, _, _) in outputs.items():
        _rename_output(g, tensor, name)

    def layout(n_channels: int, n_bins: int) -> list[int | str]:
        return ["batch", n_channels, "frames", n_bins] if channels_first else ["batch", n_bins, "frames", n_channels]

    graph = helper.make_graph(
        g.nodes, "bandnet",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, layout(n_in, n_freq))],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, layout(ch, bins)) for name, (_, ch, bins) in outputs.items()],
        g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="rainclean")
    model.ir_version = 8
    return model


def _rename_output(g: _Graph, tensor: str, name: str) -> None:
    """Give the node output ``tensor`` the graph output's ``name`` (no node reads it)."""
    for node in g.nodes:
        if tensor in node.input:
            raise ValueError(f"{tensor} is read inside the graph; it cannot become the output {name}")
    for node in g.nodes:
        for i, out in enumerate(node.output):
            if out == tensor:
                node.output[i] = name
                return
    raise ValueError(f"no node writes {tensor}")
