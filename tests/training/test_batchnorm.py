"""BatchNorm re-estimation: inference mode reproduces training-mode normalisation."""

from __future__ import annotations

import training  # noqa: F401  (sets the TensorFlow environment first)

import keras
import numpy as np
import pytest

from training.batchnorm import reestimate_batchnorm
from training.models.seed import build_seed


def _without_dropout(net: keras.Model) -> None:
    for layer in net.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0


def test_reestimated_statistics_make_inference_match_training_mode() -> None:
    keras.utils.set_random_seed(0)
    net = build_seed(n_freq=16, width=0.05)
    batch = np.random.default_rng(0).uniform(0, 1, (6, 16, 8, 1)).astype(np.float32)
    stale = net(batch, training=False).numpy()
    layers = reestimate_batchnorm(net, batch, batch_size=6)
    assert layers == 6
    assert all(layer.rate == pytest.approx(0.1) for layer in net.layers if isinstance(layer, keras.layers.Dropout))  # restored
    assert all(layer.momentum == pytest.approx(0.99) for layer in net.layers if isinstance(layer, keras.layers.BatchNormalization))
    inference = net(batch, training=False).numpy()
    _without_dropout(net)
    training_mode = net(batch, training=True).numpy()
    assert np.max(np.abs(inference - training_mode)) < 1e-4
    assert np.max(np.abs(stale - training_mode)) > 1e-3  # the untouched statistics did not match


def test_statistics_are_averaged_over_batches_weighted_by_size() -> None:
    keras.utils.set_random_seed(1)
    net = build_seed(n_freq=16, width=0.05)
    data = np.random.default_rng(1).uniform(0, 1, (5, 16, 8, 1)).astype(np.float32)
    reestimate_batchnorm(net, data, batch_size=3)  # batches of 3 and 2
    first = next(layer for layer in net.layers if isinstance(layer, keras.layers.BatchNormalization))
    conv = keras.Model(net.input, net.get_layer("enc0_conv").output)
    means = [conv(data[:3]).numpy().mean(axis=(0, 1, 2)), conv(data[3:]).numpy().mean(axis=(0, 1, 2))]
    np.testing.assert_allclose(first.moving_mean.numpy(), (3 * means[0] + 2 * means[1]) / 5, rtol=1e-4, atol=1e-6)


def test_models_without_batchnorm_are_left_alone() -> None:
    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    assert reestimate_batchnorm(net, np.zeros((3, 4), np.float32)) == 0
