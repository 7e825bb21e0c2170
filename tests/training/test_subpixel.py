"""Sub-pixel rewrite of stride-2 frequency transposed convolutions: same output, no ConvTranspose in the export."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

from training.models.bandnet import BandConfig, build_bandnet  # noqa: E402
from training.models.subpixel import SubPixelUpsample, replace_transposed_convolutions  # noqa: E402

pytestmark = pytest.mark.training


def randomised(model: keras.Model, seed: int = 0) -> keras.Model:
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


@pytest.mark.parametrize("kernel", [1, 2, 3, 4, 5, 7])
@pytest.mark.parametrize("freq", [1, 4, 33])
def test_one_layer_is_reproduced(kernel: int, freq: int) -> None:
    inputs = keras.Input((None, freq, 6))
    net = randomised(keras.Model(inputs, layers.Conv2DTranspose(5, (1, kernel), strides=(1, 2), padding="same", name="up")(inputs)))
    twin = replace_transposed_convolutions(net)
    assert isinstance(twin.get_layer("up"), SubPixelUpsample)
    x = np.random.default_rng(1).normal(size=(2, 7, freq, 6)).astype(np.float32)
    want = net(x).numpy()
    assert want.shape == (2, 7, 2 * freq, 5)
    np.testing.assert_allclose(twin(x).numpy(), want, atol=1e-5)


def test_other_transposed_convolutions_are_left_alone() -> None:
    inputs = keras.Input((None, 8, 3))
    x = layers.Conv2DTranspose(4, (3, 3), strides=(1, 1), padding="same", name="stride1")(inputs)
    x = layers.Conv2DTranspose(4, (1, 3), strides=(1, 2), padding="valid", name="valid")(x)
    net = keras.Model(inputs, x)
    assert replace_transposed_convolutions(net) is net


@pytest.mark.parametrize("options", [{}, {"context": (1, 2), "activation": "relu"}, {"channels": (4, 6, 8), "kernel_freq": 3}])
@pytest.mark.parametrize("complex_mask", [True, False])
def test_band_network_output_is_unchanged(options: dict, complex_mask: bool) -> None:
    net = randomised(build_bandnet(257, BandConfig(**options), complex_mask=complex_mask))
    twin = replace_transposed_convolutions(net)
    assert not any(isinstance(layer, layers.Conv2DTranspose) for layer in twin.layers)
    assert [layer.name for layer in twin.layers] == [layer.name for layer in net.layers]
    x = np.random.default_rng(2).uniform(size=(2, 257, 23, 3 if complex_mask else 1)).astype(np.float32)
    np.testing.assert_allclose(twin(x).numpy(), net(x).numpy(), atol=1e-4)


def test_layer_config_round_trips() -> None:
    layer = SubPixelUpsample(6, 3, name="dec0_deconv")
    copy = SubPixelUpsample.from_config(layer.get_config())
    assert (copy.filters, copy.kernel_size, copy.name) == (6, 3, "dec0_deconv")

