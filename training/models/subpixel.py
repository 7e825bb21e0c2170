"""Stride-2 transposed convolutions along frequency rewritten as sub-pixel convolutions.

A ``Conv2DTranspose`` with kernel ``(1, k)``, stride ``(1, 2)`` and ``"same"`` padding is two
ordinary stride-1 convolutions, one per output phase (even and odd output bins), whose
outputs interleave. :class:`SubPixelUpsample` computes both phases with one convolution of
twice the filters and interleaves them with a reshape. It gives the same output to float
rounding, and onnxruntime runs it several times faster on the CPU than its ``ConvTranspose``.
:func:`replace_transposed_convolutions` swaps every such layer of a trained model for its
equivalent, weights converted, for export.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import layers


def _phase_taps(kernel: int) -> tuple[int, list[tuple[int, int, int]]]:
    """``half`` and the ``(phase, offset, transposed tap)`` triples of a stride-2 ``same`` transposed kernel.

    Output bin ``2m + q`` of the transposed convolution is the sum over offsets ``d`` of
    input bin ``m + d`` times tap ``q + p - 2d`` (``p``, the leading padding of TensorFlow's
    ``same``, is ``(k - 2) // 2``); ``half`` is the largest ``|d|`` used.
    """
    pad = max(kernel - 2, 0) // 2
    taps = [(q, d, q + pad - 2 * d) for q in (0, 1) for d in range(-kernel, kernel + 1) if 0 <= q + pad - 2 * d < kernel]
    half = max((abs(d) for _, d, _ in taps), default=0)
    return half, taps


@keras.saving.register_keras_serializable(package="rainclean")
class SubPixelUpsample(layers.Layer):
    """Double the frequency axis of a ``(batch, time, freq, channels)`` map: a ``(1, kernel)``
    convolution with ``2 * filters`` outputs (even bins' filters, then odd bins'), interleaved."""

    def __init__(self, filters: int, kernel: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filters, self.kernel_size = int(filters), int(kernel)

    def build(self, input_shape: tuple[Any, ...]) -> None:
        self.kernel = self.add_weight(name="kernel", shape=(1, self.kernel_size, int(input_shape[-1]), 2 * self.filters))
        self.bias = self.add_weight(name="bias", shape=(2 * self.filters,), initializer="zeros")

    def call(self, x: keras.KerasTensor) -> keras.KerasTensor:
        y = keras.ops.conv(x, self.kernel, strides=1, padding="same") + self.bias
        shape = keras.ops.shape(y)
        return keras.ops.reshape(y, (shape[0], shape[1], 2 * int(x.shape[2]), self.filters))

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        freq = None if input_shape[2] is None else 2 * input_shape[2]
        return (input_shape[0], input_shape[1], freq, self.filters)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "filters": self.filters, "kernel": self.kernel_size}


def is_frequency_upsampler(layer: layers.Layer) -> bool:
    """A ``Conv2DTranspose`` that :func:`subpixel_weights` can rewrite."""
    return (isinstance(layer, layers.Conv2DTranspose) and tuple(layer.strides) == (1, 2) and layer.padding == "same"
            and layer.kernel_size[0] == 1 and tuple(layer.dilation_rate) == (1, 1) and layer.activation is keras.activations.linear
            and layer.use_bias)


def subpixel_weights(transposed: np.ndarray, bias: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """Kernel size, kernel and bias of the :class:`SubPixelUpsample` equal to a transposed
    convolution with kernel ``(1, k, filters, inputs)`` and ``bias``."""
    _, k, filters, inputs = transposed.shape
    half, taps = _phase_taps(k)
    kernel = np.zeros((1, 2 * half + 1, inputs, 2 * filters), dtype=transposed.dtype)
    for q, d, tap in taps:
        kernel[0, d + half, :, q * filters:(q + 1) * filters] = transposed[0, tap].T
    return 2 * half + 1, kernel, np.concatenate([bias, bias])


def replace_transposed_convolutions(net: keras.Model) -> keras.Model:
    """A copy of ``net`` with every stride-2 frequency ``Conv2DTranspose`` replaced by its
    :class:`SubPixelUpsample` (same name, converted weights); other layers keep theirs."""
    converted: dict[str, tuple[int, np.ndarray, np.ndarray]] = {}
    for layer in net.layers:
        if is_frequency_upsampler(layer):
            converted[layer.name] = subpixel_weights(*(np.asarray(w) for w in layer.get_weights()))
    if not converted:
        return net

    def clone(layer: layers.Layer) -> layers.Layer:
        if layer.name in converted:
            return SubPixelUpsample(layer.filters, converted[layer.name][0], name=layer.name)
        return type(layer).from_config(layer.get_config())

    twin = keras.models.clone_model(net, clone_function=clone)
    for layer in twin.layers:
        if layer.name in converted:
            layer.set_weights(list(converted[layer.name][1:]))
        elif layer.weights:
            layer.set_weights(net.get_layer(layer.name).get_weights())
    return twin
