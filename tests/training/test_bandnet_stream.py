"""The band network's streaming form: block by block with carried state, equal to the offline model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.training

from denoise_core.signal import SignalSpec  # noqa: E402
from training.models.bandnet import BandConfig, build_bandnet  # noqa: E402
from training.models.bandnet_stream import build_bandnet_stream, stream_features  # noqa: E402

TINY = {"channels": (4, 6), "bottleneck": 16, "dilations": (1, 2, 4, 1)}
TOLERANCE = 1e-4


def perturbed_bandnet(config: BandConfig, complex_mask: bool, seed: int = 0, df_bins: int = 0):
    """A tiny offline band network whose weights (biases and norms included) are all nonzero and random."""
    net = build_bandnet(257, config, complex_mask=complex_mask, df_bins=df_bins)
    rng = np.random.default_rng(seed)
    net.set_weights([w + 0.2 * rng.standard_normal(w.shape).astype(np.float32) for w in net.get_weights()])
    return net


def features(frames: int, complex_mask: bool, seed: int = 1, batch: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 1, (batch, 257, frames, 3 if complex_mask else 1)).astype(np.float32)


@pytest.mark.parametrize("complex_mask,lookahead,context,activation",
                         [(True, 0, (), "elu"), (True, 2, (), "elu"), (True, 3, (), "elu"), (False, 0, (), "elu"),
                          (False, 2, (), "elu"), (False, 3, (), "elu"), (True, 0, (1, 2), "elu"), (True, 2, (1, 2), "relu"),
                          (False, 3, (2,), "elu")])
def test_stream_in_random_blocks_equals_offline(lookahead: int, complex_mask: bool, context: tuple[int, ...], activation: str) -> None:
    config = BandConfig(**TINY, lookahead=lookahead, context=context, activation=activation)
    offline = perturbed_bandnet(config, complex_mask)
    stream = build_bandnet_stream(offline, config)
    assert stream.layout.delay == lookahead
    x = features(60, complex_mask)
    want = np.asarray(offline(x))
    sizes = np.random.default_rng(lookahead).integers(1, 8, 60).tolist()  # 1..7 frames a call
    got = stream_features(stream.step, stream.layout, x, sizes)
    assert got.shape == want.shape
    assert np.abs(want[:, :, 1:] - want[:, :, :-1]).max() > 1e-2  # the output really moves over time
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)


@pytest.mark.parametrize("complex_mask,lookahead,context,decoder_context,separable",
                         [(True, 2, (1, 2), (1, 2), False), (False, 0, (), (2,), False), (True, 3, (1,), (1,), False),
                          (False, 2, (1, 2), (2,), True)])
def test_decoder_context_streams_exactly(complex_mask: bool, lookahead: int, context: tuple[int, ...], decoder_context: tuple[int, ...],
                                         separable: bool) -> None:
    config = BandConfig(**{**TINY, "channels": (4, 5, 6)}, lookahead=lookahead, context=context, decoder_context=decoder_context,
                        activation="relu", context_separable=separable)
    offline = perturbed_bandnet(config, complex_mask)
    stream = build_bandnet_stream(offline, config)
    names = {s.name for s in stream.layout.states}
    assert {f"dec{i}_ctx{k}" for i in (1, 2) for k in range(len(decoder_context))} <= names
    x = features(50, complex_mask)
    sizes = np.random.default_rng(7).integers(1, 8, 50).tolist()
    np.testing.assert_allclose(stream_features(stream.step, stream.layout, x, sizes), np.asarray(offline(x)), rtol=0, atol=TOLERANCE)


def test_state_layout_and_delay_frame_by_frame() -> None:
    config = BandConfig(**TINY, lookahead=3)
    offline = perturbed_bandnet(config, True)
    stream = build_bandnet_stream(offline, config)
    shapes = {s.name: s.shape for s in stream.layout.states}
    # blocks (d=1, 2, 4, 1) pad (0, 2), (4, 0), (8, 0), (1, 1): histories of 2d frames, residual delays of `future`
    assert shapes == {
        "valid": (3,),
        "tcn0_conv": (2, 16), "tcn0_res": (2, 16), "tcn1_conv": (4, 16), "tcn2_conv": (8, 16),
        "tcn3_conv": (2, 16), "tcn3_res": (1, 16),
        "skip0": (3, 132, 3), "skip1": (3, 66, 4), "skip2": (3, 33, 6),
    }
    # one frame a call, two streams in a batch: the call for frame n returns frame n - 3, zeros before the start
    x = features(12, True, batch=2)
    want = np.asarray(offline(x))
    state = stream.initial_state(batch=2)
    for n in range(12):
        out = stream.step({"features": x[:, :, n : n + 1], "valid": np.ones((2, 1), np.float32), **state})
        state = {s.input_name: out[s.output_name] for s in stream.layout.states}
        if n < 3:
            assert np.all(out["mask"] == 0.0)
        else:
            np.testing.assert_allclose(out["mask"][:, :, 0], want[:, :, n - 3], rtol=0, atol=TOLERANCE)


def test_unbounded_lookahead_cannot_stream() -> None:
    config = BandConfig(**TINY, lookahead=None)
    with pytest.raises(ValueError, match="lookahead=None.*streams only with an integer lookahead"):
        build_bandnet_stream(build_bandnet(257, config), config)


def test_output_context_blocks_cannot_stream() -> None:
    config = BandConfig(**TINY, lookahead=2, output_context=(1,))
    with pytest.raises(ValueError, match="output_context"):
        build_bandnet_stream(build_bandnet(257, config), config)
    # nor when the config leaves them out but the model has them
    with pytest.raises(ValueError, match="output_context"):
        build_bandnet_stream(build_bandnet(257, config), BandConfig(**TINY, lookahead=2))


def test_a_dual_path_bottleneck_cannot_stream() -> None:
    config = BandConfig(**TINY, lookahead=2, dual_path=4)
    with pytest.raises(ValueError, match="dual_path"):
        build_bandnet_stream(build_bandnet(257, config), config)
    with pytest.raises(ValueError, match="dual_path"):
        build_bandnet_stream(build_bandnet(257, config), BandConfig(**TINY, lookahead=2))


def test_a_config_that_does_not_match_the_model_is_refused() -> None:
    offline = build_bandnet(257, BandConfig(**TINY, lookahead=2))
    with pytest.raises(ValueError, match="wrong BandConfig"):
        build_bandnet_stream(offline, BandConfig(**TINY, lookahead=3))
    with pytest.raises(ValueError, match="wrong BandConfig"):
        build_bandnet_stream(offline, BandConfig(**TINY, lookahead=2, context=(1,)))
    with_context = build_bandnet(257, BandConfig(**TINY, lookahead=2, context=(1, 2)))
    with pytest.raises(ValueError, match="wrong BandConfig"):
        build_bandnet_stream(with_context, BandConfig(**TINY, lookahead=2, context=(2, 2)))
    with pytest.raises(ValueError, match="more encoder context blocks"):
        build_bandnet_stream(with_context, BandConfig(**TINY, lookahead=2, context=(1,)))
    with_decoder_context = build_bandnet(257, BandConfig(**TINY, lookahead=2, decoder_context=(1, 2)))
    with pytest.raises(ValueError, match="wrong BandConfig"):
        build_bandnet_stream(with_decoder_context, BandConfig(**TINY, lookahead=2, decoder_context=(2, 2)))
    with pytest.raises(ValueError, match="more decoder context blocks"):
        build_bandnet_stream(with_decoder_context, BandConfig(**TINY, lookahead=2, decoder_context=(1,)))


@pytest.mark.parametrize("lookahead,df_bins", [(2, 65), (0, 20), (3, 7), (2, 129)])
def test_a_deep_filter_network_streams_its_taps_exactly(lookahead: int, df_bins: int) -> None:
    config = BandConfig(**TINY, lookahead=lookahead, context=(1,), activation="relu")
    offline = perturbed_bandnet(config, True, seed=5, df_bins=df_bins)
    stream = build_bandnet_stream(offline, config)
    assert stream.layout.output_channels == 12 and stream.layout.delay == lookahead
    x = features(40, True, seed=6)
    want = np.asarray(offline(x))
    assert np.abs(want[:, :df_bins, :, 2:]).max() > 0.1 and np.all(want[:, df_bins:, :, 2:] == 0)  # taps on the lowest bins only
    sizes = np.random.default_rng(9).integers(1, 8, 40).tolist()
    np.testing.assert_allclose(stream_features(stream.step, stream.layout, x, sizes), want, rtol=0, atol=TOLERANCE)


def test_context_blocks_carry_their_history_as_state() -> None:
    config = BandConfig(**TINY, lookahead=1, context=(1, 2))
    stream = build_bandnet_stream(perturbed_bandnet(config, True), config)
    shapes = {s.name: s.shape for s in stream.layout.states}
    assert {k: v for k, v in shapes.items() if "ctx" in k} == {
        "enc0_ctx0": (2, 66, 4), "enc0_ctx1": (4, 66, 4), "enc1_ctx0": (2, 33, 6), "enc1_ctx1": (4, 33, 6)}


@pytest.mark.parametrize("complex_mask,lookahead,context", [(True, 3, ()), (False, 2, ()), (True, 2, (1,))])
def test_exported_onnx_streams_like_the_offline_model(tmp_path: Path, complex_mask: bool, lookahead: int, context: tuple[int, ...]) -> None:
    import onnxruntime as ort

    from training.export_stream import main, onnx_step
    from training.models.bandnet_stream import StreamLayout

    config = BandConfig(**TINY, lookahead=lookahead, context=context)
    offline = perturbed_bandnet(config, complex_mask, seed=3)
    run = tmp_path / "run"
    run.mkdir()
    offline.save(str(run / "model.keras"))
    spec = SignalSpec(output="complex_mask" if complex_mask else "mask", lookahead_frames=lookahead)
    options = {"channels": list(TINY["channels"]), "bottleneck": 16, "dilations": list(TINY["dilations"]), "lookahead": lookahead,
               "context": list(context)}
    (run / "config.json").write_text(json.dumps({"signal": spec.to_dict(), "train": {"model_options": options},
                                                 "preset": "band" if complex_mask else "band-mask"}))
    out = tmp_path / "stream.onnx"
    assert main(["--run", str(run), "--out", str(out)]) == 0

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["streaming"] == "true" and meta["stream_lookahead_frames"] == str(lookahead)
    assert meta["stream_block_axis"] == "2" and meta["output"] == spec.output
    assert float(meta["algorithmic_latency_ms"]) == pytest.approx((512 + lookahead * 256) / 16000 * 1000)
    layout = StreamLayout.from_dict(json.loads(meta["stream_layout"]))
    names = {i.name: i.shape for i in session.get_inputs()}
    assert set(names) == {"features", "valid", *(s.input_name for s in layout.states)}
    assert not isinstance(names["features"][2], int)  # the block axis is dynamic
    for s, listed in zip(layout.states, json.loads(meta["stream_states"])):
        assert names[s.input_name][1:] == list(s.shape) and listed["output"] == s.output_name
    assert {o.name for o in session.get_outputs()} == {"mask", *(s.output_name for s in layout.states)}

    x = features(50, complex_mask, seed=4)
    sizes = np.random.default_rng(5).integers(1, 8, 50).tolist()
    got = stream_features(onnx_step(session), layout, x, sizes)
    np.testing.assert_allclose(got, np.asarray(offline(x)), rtol=0, atol=TOLERANCE)
