"""Slicing whose gradient is cheap on this CPU.

TensorFlow differentiates a strided slice (``x[:, :, a:b]``, Keras's ``Cropping2D``) with
``StridedSliceGrad``, which on CPU runs about ten times slower than the gradient of a
plain slice or a split (a pad or a concatenation). The training graph slices with these
instead; the values are the same.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import layers


@keras.saving.register_keras_serializable(package="rainclean")
class Crop2D(layers.Cropping2D):
    """``Cropping2D`` (channels last) computed with ``keras.ops.slice``."""

    def call(self, inputs: Any) -> Any:
        (top, bottom), (left, right) = self.cropping
        shape = keras.ops.shape(inputs)
        rows = -1 if top == bottom == 0 else shape[1] - top - bottom
        cols = -1 if left == right == 0 else shape[2] - left - right
        return keras.ops.slice(inputs, [0, top, left, 0], [-1, rows, cols, -1])


def split_at(x: tf.Tensor, index: int, axis: int) -> tuple[tf.Tensor, tf.Tensor]:
    """``x`` cut along ``axis`` into the parts before and from ``index``."""
    size = x.shape[axis]
    if size is None:
        size = tf.shape(x)[axis]
    return tuple(tf.split(x, [index, size - index], axis=axis))  # type: ignore[return-value]
