"""The band network written straight to ONNX computes what the Keras network computes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.training

import keras  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402

from denoise_core.signal import Layout, from_model_layout, to_model_layout  # noqa: E402
from training.export import to_onnx  # noqa: E402
from training.models.bandnet import BandConfig, build_bandnet  # noqa: E402
from training.models.bandnet_onnx import UnsupportedNetwork, bandnet_to_onnx  # noqa: E402
from training.models.default import DefaultConfig, build_default  # noqa: E402

TINY: dict[str, Any] = {"channels": (4, 6), "bottleneck": 16, "dilations": (1, 2)}

CONFIGS = {
    "preset-like": {},
    "context-relu": {"context": (1, 2), "activation": "relu"},
    "three-levels": {"channels": (3, 4, 5), "kernel_freq": 3},
    "kernel-7-centred": {"kernel_freq": 7, "lookahead": None},
    "causal-other-bands": {"lookahead": 0, "linear_bins": 40, "bands": 30, "context": (2,), "context_kernel": (2, 5)},
    "bands-only": {"linear_bins": 0, "bands": 48},  # no linear bins: the input is merged by one product
    "decoder-context": {"channels": (3, 4, 5), "context": (1,), "decoder_context": (1, 2), "activation": "relu"},
    "separable-context": {"channels": (3, 4, 5), "context": (1, 4), "decoder_context": (2,), "context_separable": True,
                          "context_kernel": (3, 5), "lookahead": None, "activation": "relu"},
    "one-level-full-context": {"channels": (3, 4, 5), "context": (1, 2), "decoder_context": (2,), "context_separable": True,
                               "context_full_levels": (1,), "lookahead": None, "activation": "relu"},
    "centred-context": {"channels": (3, 4, 5), "context": (1, 2), "decoder_context": (2,), "context_separable": True,
                        "context_centred": True, "context_kernel": (4, 3), "lookahead": None},
    "output-context": {"context": (1,), "output_context": (1, 2), "lookahead": None, "activation": "relu"},
    "dual-path": {"context": (1,), "output_context": (1,), "dual_path": 5, "kernel_time": 5, "lookahead": None, "activation": "relu"},
    "dual-path-causal": {"channels": (3, 4, 5), "dual_path": 4, "lookahead": 2},
    "separable-output-context": {"channels": (3, 4, 5), "context": (1,), "decoder_context": (1,), "output_context": (2,),
                                 "context_separable": True, "context_kernel": (3, 5), "lookahead": None},
}


def perturbed(net: keras.Model, seed: int = 0) -> keras.Model:
    """``net`` with every weight moved off its initial value (zero biases would hide mistakes)."""
    rng = np.random.default_rng(seed)
    for layer in net.layers:
        if layer.weights:
            layer.set_weights([w + 0.1 * rng.standard_normal(w.shape).astype(w.dtype) for w in layer.get_weights()])
    return net


def onnx_outputs(model: onnx.ModelProto, x: np.ndarray, layout: Layout = "channels_last") -> list[np.ndarray]:
    """The model's outputs on ``(batch, freq, frames, channels)`` input, in that layout whatever the model's."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [from_model_layout(out, layout) for out in session.run(None, {session.get_inputs()[0].name: to_model_layout(x, layout)})]


def onnx_output(model: onnx.ModelProto, x: np.ndarray, layout: Layout = "channels_last") -> np.ndarray:
    """The model's only output, as :func:`onnx_outputs` gives it."""
    (out,) = onnx_outputs(model, x, layout)
    return out


LAYOUTS = ["channels_last", "channels_first"]


def dims(value: onnx.ValueInfoProto) -> list[Any]:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("complex_mask", [True, False], ids=["complex", "magnitude"])
@pytest.mark.parametrize("name", list(CONFIGS))
def test_matches_keras_on_any_batch_and_frame_count(name: str, complex_mask: bool, layout: Layout) -> None:
    config = BandConfig(**{**TINY, **CONFIGS[name]})
    net = perturbed(build_bandnet(257, config, complex_mask))
    model = bandnet_to_onnx(net, channels_first=layout == "channels_first")
    onnx.checker.check_model(model)
    rng = np.random.default_rng(1)
    for batch, frames in ((1, 1), (2, 7), (3, 40)):
        x = rng.uniform(0.0, 1.0, (batch, 257, frames, 3 if complex_mask else 1)).astype(np.float32)
        want = net(x, training=False).numpy()
        got = onnx_output(model, x, layout)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=2e-5, rtol=0)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("options,df_bins,order,past", [
    ({}, 65, 5, 2),
    ({"lookahead": None, "context": (1,), "activation": "relu"}, 17, 3, 0),
    ({"channels": (3, 4, 5), "linear_bins": 40, "bands": 30}, 40, 4, 3),
    ({}, 129, 5, 2),
    ({"channels": (3, 4, 5), "linear_bins": 40, "bands": 30, "lookahead": None}, 257, 3, 1),
    ({"lookahead": None, "context": (1,), "output_context": (1, 2), "context_separable": True}, 65, 5, 2),
], ids=["preset-like", "odd-bins-causal-taps", "three-levels-other-bands", "spread-to-4-khz", "spread-to-all-bins", "output-context"])
def test_a_deep_filter_head_matches_keras(options: dict[str, Any], df_bins: int, order: int, past: int, layout: Layout) -> None:
    net = perturbed(build_bandnet(257, BandConfig(**{**TINY, **options}), df_bins=df_bins, df_order=order, df_past=past))
    model = bandnet_to_onnx(net, channels_first=layout == "channels_first")
    onnx.checker.check_model(model)
    assert [o.name for o in model.graph.output] == ["mask", "taps"]
    assert not {"Pad", "Concat"} & {n.op_type for n in model.graph.node if {"mask", "taps"} & set(n.output)}
    rng = np.random.default_rng(2)
    for batch, frames in ((1, 1), (2, 9)):
        x = rng.uniform(0.0, 1.0, (batch, 257, frames, 3)).astype(np.float32)
        want = net(x, training=False).numpy()
        assert want.shape == (batch, 257, frames, 2 + 2 * order)
        mask, taps = onnx_outputs(model, x, layout)
        assert mask.shape == (batch, 257, frames, 2) and taps.shape == (batch, df_bins, frames, 2 * order)
        np.testing.assert_allclose(mask, want[..., :2], atol=2e-5, rtol=0)
        np.testing.assert_allclose(taps, want[:, :df_bins, :, 2:], atol=2e-5, rtol=0)
        assert not want[:, df_bins:, :, 2:].any()  # Keras's taps above df_bins are zeros: the file leaves nothing out


def test_the_graph_has_no_transposed_convolution_or_pad_and_names_its_axes() -> None:
    model = bandnet_to_onnx(build_bandnet(257, BandConfig(**TINY, context=(1,))))
    ops = {node.op_type for node in model.graph.node}
    assert "Conv" in ops and not ops & {"ConvTranspose", "Pad"}
    assert dims(model.graph.input[0]) == ["batch", 257, "frames", 3]


@pytest.mark.parametrize("df_bins", [0, 65], ids=["complex-mask", "deep-filter"])
def test_channels_first_has_no_transpose_at_either_end(df_bins: int) -> None:
    net = build_bandnet(257, BandConfig(**TINY), df_bins=df_bins)
    model = bandnet_to_onnx(net, channels_first=True)
    graph = model.graph
    ends = {graph.input[0].name, *(o.name for o in graph.output)}
    assert not [n for n in graph.node if n.op_type == "Transpose" and ends & {*n.input, *n.output}]
    assert dims(graph.input[0]) == ["batch", 3, "frames", 257]
    assert dims(graph.output[0]) == ["batch", 2, "frames", 257]
    if df_bins:
        assert dims(graph.output[1]) == ["batch", int(net.output.shape[3]) - 2, "frames", df_bins]
    channels_last = bandnet_to_onnx(net, channels_first=False).graph
    assert sum(n.op_type == "Transpose" for n in graph.node) < sum(n.op_type == "Transpose" for n in channels_last.node)


@pytest.mark.parametrize("build", [
    lambda: build_bandnet(257, BandConfig(**TINY, conv_norm=True)),
    lambda: build_default(257, DefaultConfig(channels=(4, 6), bottleneck=8, dilations=(1,)), complex_mask=True),
], ids=["normalised-maps", "default-network"])
def test_other_networks_are_refused_and_exported_through_tf2onnx(build: Any) -> None:
    from training.presets import get_preset

    net = build()
    with pytest.raises(UnsupportedNetwork):
        bandnet_to_onnx(net)
    model = to_onnx(net, get_preset("band").signal)
    assert model.producer_name != "rainclean"
    with pytest.raises(UnsupportedNetwork):  # tf2onnx writes Keras's channels-last layout only
        to_onnx(net, replace(get_preset("band").signal, layout="channels_first"))
    x = np.random.default_rng(2).uniform(0.0, 1.0, (1, 257, 12, int(net.input.shape[-1]))).astype(np.float32)
    np.testing.assert_allclose(onnx_output(model, x), net(x, training=False).numpy(), atol=2e-5, rtol=0)


def test_the_parity_check_compares_a_split_output_part_by_part() -> None:
    from denoise_core.signal import MaskAndTaps, SignalSpec
    from training.export import output_difference

    spec = SignalSpec(output="complex_mask", df_bins=3, df_order=2, df_lookahead=1)
    whole = np.random.default_rng(3).uniform(-1, 1, (1, 257, 5, 6)).astype(np.float32)
    whole[:, 3:, :, 2:] = 0.0
    parts = MaskAndTaps(whole[..., :2].copy(), whole[:, :3, :, 2:].copy())
    assert output_difference(parts, whole, spec) == 0.0 == output_difference(whole, parts, spec)
    parts.taps[0, 2, 4, 3] += 0.5
    assert output_difference(whole, parts, spec) == pytest.approx(0.5)
    parts.mask[0, 200, 0, 1] -= 0.75
    assert output_difference(parts, whole, spec) == pytest.approx(0.75)
