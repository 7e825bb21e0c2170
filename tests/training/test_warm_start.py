"""Starting a network from another run's weights: exact copies, separable blocks from full ones, refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.training

from training.presets import get_preset  # noqa: E402
from training.warm_start import separable_from_full, shift_time_taps, start_from, transfer_weights  # noqa: E402

TINY: dict[str, Any] = {"channels": [4, 6], "bottleneck": 16, "dilations": [1, 2], "context": [1, 2], "activation": "relu",
                        "lookahead": None}
SOURCE_PRESET = "band-offline-df"
TARGET_PRESET = "band-offline-df-sep-pesq"  # the source's network with separable context blocks


def network(preset_name: str, seed: int, **options: Any) -> keras.Model:
    keras.utils.set_random_seed(seed)
    preset = get_preset(preset_name)
    return preset.build(preset.signal, preset.options({**TINY, **options}))


def features(frames: int = 20) -> np.ndarray:
    return np.random.default_rng(3).uniform(0, 1, (2, 257, frames, 3)).astype(np.float32)


def weights_by_name(net: keras.Model) -> dict[str, list[np.ndarray]]:
    return {layer.name: layer.get_weights() for layer in net.layers if layer.weights}


def make_context_kernels_rank_one(net: keras.Model) -> None:
    """Give every full context block a kernel that is rank one per input channel."""
    rng = np.random.default_rng(1)
    for layer in net.layers:
        if "_ctx" in layer.name and layer.name.endswith("_conv"):
            kernel, bias = layer.get_weights()
            kt, kf, channels, out = kernel.shape
            taps, mix = rng.normal(size=(kt, kf, channels, 1)), rng.normal(size=(1, 1, channels, out))
            layer.set_weights([(0.3 * taps * mix).astype(np.float32), rng.normal(size=bias.shape).astype(np.float32)])


def test_the_same_network_is_copied_exactly() -> None:
    source, net = network(SOURCE_PRESET, 0), network(SOURCE_PRESET, 1)
    assert transfer_weights(net, source) == []
    for name, weights in weights_by_name(source).items():
        for mine, theirs in zip(net.get_layer(name).get_weights(), weights):
            np.testing.assert_array_equal(mine, theirs)
    x = features()
    np.testing.assert_array_equal(net.predict(x, verbose=0), source.predict(x, verbose=0))


@pytest.mark.parametrize("source_options,target_options,expected", [
    ({}, {}, ["enc0_ctx0", "enc0_ctx1", "enc1_ctx0", "enc1_ctx1"]),
    ({}, {"context_full_levels": [1]}, ["enc0_ctx0", "enc0_ctx1"]),
    ({"output_context": [1]}, {"context_full_levels": [0], "output_context": [1], "output_context_full": True},
     ["enc1_ctx0", "enc1_ctx1"]),
    ({"output_context": [1]}, {"context_full_levels": [0], "output_context": [1]}, ["dec0_ctx0", "enc1_ctx0", "enc1_ctx1"]),
])
def test_separable_blocks_start_from_full_ones_and_the_rest_is_copied(source_options: dict[str, Any],
                                                                      target_options: dict[str, Any],
                                                                      expected: list[str]) -> None:
    source = network(SOURCE_PRESET, 0, **source_options)
    make_context_kernels_rank_one(source)
    net = network(TARGET_PRESET, 1, **target_options)
    converted = transfer_weights(net, source)
    assert converted == expected
    for name, weights in weights_by_name(source).items():
        if name.rsplit("_", 1)[0] not in converted:
            for mine, theirs in zip(net.get_layer(name).get_weights(), weights):
                np.testing.assert_array_equal(mine, theirs)
    # full kernels that are rank one per input channel are exactly separable: same output
    x = features()
    np.testing.assert_allclose(net.predict(x, verbose=0), source.predict(x, verbose=0), atol=1e-4)


def test_separable_from_full_is_the_least_squares_rank_one_part_per_channel() -> None:
    kernel = np.random.default_rng(0).normal(size=(3, 3, 4, 5))
    bias = np.arange(5.0)
    depthwise, dw_bias, pointwise, pw_bias = separable_from_full(kernel, bias)
    assert depthwise.shape == (3, 3, 4, 1) and pointwise.shape == (1, 1, 4, 5)
    np.testing.assert_array_equal(dw_bias, 0.0)
    np.testing.assert_array_equal(pw_bias, bias)
    composed = depthwise * pointwise  # (3, 3, 4, 5): taps of input channel c to output o
    for c in range(4):
        singular = np.linalg.svd(kernel[:, :, c, :].reshape(9, 5), compute_uv=False)
        residual = ((kernel[:, :, c, :] - composed[:, :, c, :]) ** 2).sum()
        np.testing.assert_allclose(residual, (singular[1:] ** 2).sum(), rtol=1e-6)


def test_a_network_that_differs_elsewhere_is_refused() -> None:
    source, net = network(SOURCE_PRESET, 0), network(SOURCE_PRESET, 1, bottleneck=24)
    with pytest.raises(ValueError, match="bn_in"):
        transfer_weights(net, source)
    with pytest.raises(ValueError, match="not in this network"):
        transfer_weights(network(SOURCE_PRESET, 1, context=[1]), source)


def test_start_from_reads_the_source_network_from_its_run_record(tmp_path: Path) -> None:
    source = network(SOURCE_PRESET, 0)
    make_context_kernels_rank_one(source)
    run = tmp_path / "source-run"
    run.mkdir()
    source.save_weights(run / "best-quality.weights.h5")
    (run / "config.json").write_text(json.dumps({"train": {"preset": SOURCE_PRESET, "model_options": TINY}}))
    net = network(TARGET_PRESET, 1)
    assert start_from(net, run / "best-quality.weights.h5") == ["enc0_ctx0", "enc0_ctx1", "enc1_ctx0", "enc1_ctx1"]
    x = features()
    np.testing.assert_allclose(net.predict(x, verbose=0), source.predict(x, verbose=0), atol=1e-4)


def test_start_from_loads_weights_without_a_run_record_directly(tmp_path: Path) -> None:
    source = network(SOURCE_PRESET, 0)
    source.save_weights(tmp_path / "w.weights.h5")
    net = network(SOURCE_PRESET, 1)
    assert start_from(net, tmp_path / "w.weights.h5") == []
    x = features()
    np.testing.assert_array_equal(net.predict(x, verbose=0), source.predict(x, verbose=0))


@pytest.mark.parametrize("target", [SOURCE_PRESET, TARGET_PRESET])
def test_centred_context_blocks_keep_the_taps_that_read_the_same_frames(target: str) -> None:
    source = network(SOURCE_PRESET, 0)
    make_context_kernels_rank_one(source)
    net = network(target, 1, context_centred=True)
    transfer_weights(net, source)
    for block, dilation in (("enc0_ctx0", 1), ("enc1_ctx1", 2)):
        assert net.get_layer(f"{block}_tpad").padding[0] == (dilation, dilation)
        full = source.get_layer(f"{block}_conv").get_weights()[0]  # causal taps: t - 2d, t - d, t
        if target == SOURCE_PRESET:
            centred = net.get_layer(f"{block}_conv").get_weights()[0]  # centred: t - d, t, t + d
        else:  # rank one per channel: the separable pair composes to the full kernel exactly
            centred = net.get_layer(f"{block}_dw").get_weights()[0] * net.get_layer(f"{block}_conv").get_weights()[0]
        np.testing.assert_allclose(centred[:2], full[1:], atol=1e-5)
        np.testing.assert_array_equal(centred[2], 0.0)


def test_shift_time_taps_moves_taps_both_ways_and_fills_zeros() -> None:
    kernel = np.arange(1.0, 4.0).reshape(3, 1)
    np.testing.assert_array_equal(shift_time_taps(kernel, 1)[:, 0], [2.0, 3.0, 0.0])
    np.testing.assert_array_equal(shift_time_taps(kernel, -1)[:, 0], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(shift_time_taps(kernel, 0), kernel)


@pytest.mark.parametrize("target", [SOURCE_PRESET, TARGET_PRESET])
def test_a_wider_second_level_starts_computing_what_the_source_computes(target: str) -> None:
    source = network(SOURCE_PRESET, 0)
    make_context_kernels_rank_one(source)
    fresh = network(target, 1, channels=[4, 9])
    initial = weights_by_name(fresh)
    net = network(target, 1, channels=[4, 9])
    transfer_weights(net, source)
    x = features()
    np.testing.assert_allclose(net.predict(x, verbose=0), source.predict(x, verbose=0), atol=1e-4)
    kernel = net.get_layer("enc1_conv").get_weights()[0]  # (1, 5, 4, 9)
    np.testing.assert_array_equal(kernel[..., :6], source.get_layer("enc1_conv").get_weights()[0])
    np.testing.assert_array_equal(kernel[..., 6:], initial["enc1_conv"][0][..., 6:])  # new channels learn from their own start
    assert np.abs(kernel[..., 6:]).sum() > 0
    bn_in = net.get_layer("bn_in").get_weights()[0]  # rows (frequency, channel) flattened
    freq = bn_in.shape[0] // 9
    np.testing.assert_array_equal(bn_in.reshape(freq, 9, -1)[:, :6], source.get_layer("bn_in").get_weights()[0].reshape(freq, 6, -1))
    np.testing.assert_array_equal(bn_in.reshape(freq, 9, -1)[:, 6:], 0.0)  # the bottleneck does not read new channels yet
    np.testing.assert_array_equal(net.get_layer("bn_out").get_weights()[0].reshape(-1, freq, 9)[:, :, 6:],
                                  initial["bn_out"][0].reshape(-1, freq, 9)[:, :, 6:])


@pytest.mark.parametrize("options,layer", [({"channels": [6, 6]}, "enc0_conv"), ({"channels": [4, 5]}, "enc1_conv")])
def test_a_wider_first_level_or_a_narrower_level_is_refused(options: dict[str, Any], layer: str) -> None:
    with pytest.raises(ValueError, match=layer):
        transfer_weights(network(SOURCE_PRESET, 1, **options), network(SOURCE_PRESET, 0))
