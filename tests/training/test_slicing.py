"""The cheap-gradient slicing and overlap-add give what TensorFlow's own ops give, values and gradients."""

from __future__ import annotations

import training  # noqa: F401  (sets the TensorFlow environment first)

import keras
import numpy as np
import pytest
import tensorflow as tf

from training.losses import overlap_add
from training.models.slicing import Crop2D, split_at


def _value_and_gradient(fn, x: tf.Tensor) -> tuple[np.ndarray, np.ndarray]:
    weights = tf.random.stateless_normal(fn(x).shape, seed=(1, 2))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = fn(x)
        loss = tf.reduce_sum(y * weights)
    return y.numpy(), tape.gradient(loss, x).numpy()


@pytest.mark.parametrize("cropping", [((0, 0), (0, 3)), ((2, 1), (1, 0)), ((0, 0), (0, 0))])
def test_crop2d_is_cropping2d(cropping: tuple[tuple[int, int], tuple[int, int]]) -> None:
    x = tf.random.stateless_normal((2, 9, 12, 3), seed=(0, 1))
    got = _value_and_gradient(Crop2D(cropping), x)
    want = _value_and_gradient(keras.layers.Cropping2D(cropping), x)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_crop2d_keeps_a_free_time_axis_and_serialises() -> None:
    inputs = keras.Input((None, 12, 3))
    model = keras.Model(inputs, Crop2D(((0, 0), (0, 4)), name="crop")(inputs))
    assert model.output.shape == (None, None, 8, 3)
    clone = keras.Model.from_config(model.get_config())
    assert isinstance(clone.get_layer("crop"), Crop2D)
    assert clone(np.zeros((1, 5, 12, 3), np.float32)).shape == (1, 5, 8, 3)


def test_split_at_cuts_a_static_or_a_dynamic_axis() -> None:
    x = tf.reshape(tf.range(24.0), (2, 12))
    head, tail = split_at(x, 5, axis=1)
    np.testing.assert_array_equal(head.numpy(), x.numpy()[:, :5])
    np.testing.assert_array_equal(tail.numpy(), x.numpy()[:, 5:])
    dynamic = tf.function(lambda t: split_at(t, 5, axis=1)[1], input_signature=[tf.TensorSpec((None, None))])
    np.testing.assert_array_equal(dynamic(x).numpy(), x.numpy()[:, 5:])


@pytest.mark.parametrize("length,hop", [(512, 256), (512, 128), (400, 160), (8, 8)])
def test_overlap_add_is_tensorflows(length: int, hop: int) -> None:
    frames = tf.random.stateless_normal((3, 7, length), seed=(4, 5))
    got = _value_and_gradient(lambda f: overlap_add(f, hop), frames)
    want = _value_and_gradient(lambda f: tf.signal.overlap_and_add(f, hop), frames)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=1e-5)
