"""The default network: a mask U-Net that downsamples frequency only, with a temporal
convolutional bottleneck.

Layout inside is ``(batch, time, freq, channels)``. The encoder halves frequency three
times with strided 2-D convolutions (the 257 bins are zero-padded to 264 = 8*33); each
frame's ``33 x C`` map is projected to a vector and passed through residual blocks of
dilated depthwise-separable 1-D convolutions along time (receptive field of seconds);
the decoder mirrors the encoder with skip connections and ends in a sigmoid mask.
Time is never downsampled, so any frame count is legal.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from training.models.slicing import Crop2D


@dataclass(frozen=True)
class DefaultConfig:
    """Widths chosen by equal-time validation runs (docs/training-report-v1.md); additive skips
    and 3-bin frequency kernels because a training step costs less on this CPU
    (``python -m training.step_benchmark`` prints the cost per design)."""

    channels: tuple[int, ...] = (16, 32, 64)
    bottleneck: int = 192
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 1, 2, 4, 8, 16)
    kernel_time: int = 3
    kernel_freq: int = 3
    conv_norm: bool = True  # LayerNorm on the 2-D maps: slower steps, much better ones
    skip: str = "add"  # "concat" or "add": how decoder levels take the encoder's maps


def bound_modulus(z: keras.KerasTensor) -> keras.KerasTensor:
    """``z * tanh(r) / r`` with ``r = |z|`` over the last axis (real, imaginary): the phase is
    kept and the modulus becomes ``tanh(r)``, at most one."""
    r = keras.ops.sqrt(keras.ops.sum(keras.ops.square(z), axis=-1, keepdims=True) + 1e-8)
    return z * (keras.ops.tanh(r) / r)


@keras.saving.register_keras_serializable(package="rainclean")
class BoundedComplexMask(layers.Layer):
    """Map two channels ``(a, b)`` to the complex mask ``z * tanh(r) / r`` with ``z = (1 + a, b)``
    and ``r = |z|``: the phase is free and the magnitude ``tanh(r)`` stays at most one, like the
    sigmoid mask's. The offset makes a network whose outputs are near zero (as at
    initialisation) pass the noisy phase with gain tanh(1), instead of a random small mask."""

    def call(self, x: keras.KerasTensor) -> keras.KerasTensor:
        return bound_modulus(x + keras.ops.convert_to_tensor([1.0, 0.0], dtype=x.dtype))


def _norm_act(x: keras.KerasTensor, name: str, norm: bool = True) -> keras.KerasTensor:
    if norm:
        x = layers.LayerNormalization(axis=-1, epsilon=1e-5, name=f"{name}_ln")(x)
    return layers.Activation("elu", name=f"{name}_act")(x)


def build_default(n_freq: int = 257, config: DefaultConfig = DefaultConfig(), complex_mask: bool = False) -> keras.Model:
    """Build the mask network for ``n_freq`` bins and any frame count: a magnitude mask
    from one input channel, or (``complex_mask``) a complex mask from three."""
    levels = len(config.channels)
    step = 2**levels
    padded = -(-n_freq // step) * step
    inputs = keras.Input(shape=(n_freq, None, 3 if complex_mask else 1), name="features")
    x = layers.Permute((2, 1, 3), name="to_time_major")(inputs)  # (B, T, F, C)
    x = layers.ZeroPadding2D(((0, 0), (0, padded - n_freq)), name="pad_freq")(x)
    skips = [x]
    for i, ch in enumerate(config.channels):
        x = layers.Conv2D(ch, (config.kernel_time, config.kernel_freq), strides=(1, 2), padding="same", name=f"enc{i}_conv")(x)
        x = _norm_act(x, f"enc{i}", config.conv_norm)
        skips.append(x)
    f_low, c_low = padded // step, config.channels[-1]
    x = layers.Reshape((-1, f_low * c_low), name="flatten_freq")(x)
    x = layers.Dense(config.bottleneck, name="bn_in")(x)
    for j, d in enumerate(config.dilations):
        y = layers.LayerNormalization(epsilon=1e-5, name=f"tcn{j}_ln")(x)
        y = layers.DepthwiseConv1D(config.kernel_time, dilation_rate=d, padding="same", name=f"tcn{j}_dw")(y)
        y = layers.Activation("elu", name=f"tcn{j}_act")(y)
        y = layers.Dense(config.bottleneck, name=f"tcn{j}_pw")(y)
        x = layers.Add(name=f"tcn{j}_res")([x, y])
    x = layers.Dense(f_low * c_low, name="bn_out")(x)
    x = layers.Reshape((-1, f_low, c_low), name="unflatten_freq")(x)
    if config.skip not in ("concat", "add"):
        raise ValueError(f"skip must be 'concat' or 'add', not {config.skip!r}")
    for i in reversed(range(levels)):
        merge = layers.Concatenate if config.skip == "concat" else layers.Add
        x = merge(name=f"dec{i}_skip")([x, skips[i + 1]])
        out_ch = config.channels[i - 1] if i > 0 else config.channels[0]
        x = layers.Conv2DTranspose(out_ch, (config.kernel_time, config.kernel_freq), strides=(1, 2), padding="same", name=f"dec{i}_deconv")(x)
        x = _norm_act(x, f"dec{i}", config.conv_norm)
    x = layers.Concatenate(name="out_skip")([x, skips[0]])
    if complex_mask:
        x = layers.Conv2D(2, (1, 1), name="mask_raw")(x)
        x = BoundedComplexMask(name="mask")(x)
    else:
        x = layers.Conv2D(1, (1, 1), activation="sigmoid", name="mask")(x)
    x = Crop2D(((0, 0), (0, padded - n_freq)), name="crop_freq")(x)
    outputs = layers.Permute((2, 1, 3), name="to_freq_major")(x)
    return keras.Model(inputs, outputs, name="default")
