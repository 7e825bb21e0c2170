"""The onnxruntime session a model file gets: memory patterns off unless asked for, its
input and output in the layout the file says, and a deep filter's taps apart from its mask."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from dataclasses import replace

from denoise_core.model_file import OnnxModel
from denoise_core.signal import MaskAndTaps, SignalSpec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from onnx_fixtures import make_constant_mask_model, make_mixing_model  # noqa: E402


@pytest.mark.parametrize("pattern", [False, True])
def test_memory_pattern_setting_reaches_the_session(tmp_path: Path, pattern: bool) -> None:
    model = OnnxModel(make_constant_mask_model(tmp_path / "m.onnx"), 1, 1, memory_pattern=pattern)
    options = model.session.get_session_options()
    assert options.enable_mem_pattern is pattern
    assert options.intra_op_num_threads == 1
    x = np.random.default_rng(0).standard_normal((16000, 1)).astype(np.float32) * 0.1
    assert model.denoise(x, 16000).shape == x.shape


def test_the_default_session_has_no_memory_pattern(tmp_path: Path) -> None:
    assert OnnxModel(make_constant_mask_model(tmp_path / "m.onnx")).session.get_session_options().enable_mem_pattern is False


def test_a_channels_first_file_predicts_and_denoises_as_a_channels_last_one(tmp_path: Path) -> None:
    """The same network in both layouts: ``predict`` takes and returns ``(batch, freq, frames,
    channels)`` for either file, and the audio out is the same, deep filter included."""
    spec = SignalSpec(output="complex_mask", df_bins=16, df_order=3, df_lookahead=1, frame_multiple=4)
    last = OnnxModel(make_mixing_model(tmp_path / "last.onnx", spec), 1, 1)
    first = OnnxModel(make_mixing_model(tmp_path / "first.onnx", replace(spec, layout="channels_first")), 1, 1)
    assert first.spec.layout == "channels_first" and last.spec.layout == "channels_last"
    assert first.io_description()["inputs"][0]["shape"] == ["batch", 3, "frames", 257]
    x = np.random.default_rng(1).uniform(0, 1, (2, 257, 12, 3)).astype(np.float32)
    out = first.predict(x)
    assert out.shape == (2, 257, 12, spec.output_channels) == (2, 257, 12, 8)
    np.testing.assert_allclose(out, last.predict(x), rtol=0, atol=1e-6)
    audio = np.random.default_rng(2).normal(0, 0.1, (16000 + 123, 1)).astype(np.float32)
    clean = first.denoise(audio, 16000)
    np.testing.assert_allclose(clean, last.denoise(audio, 16000), rtol=0, atol=1e-6)
    assert np.abs(clean - audio).max() > 1e-2  # the network did change the audio


@pytest.mark.parametrize("layout", ["channels_last", "channels_first"])
def test_a_file_with_mask_and_taps_outputs_denoises_as_the_single_output_one(tmp_path: Path, layout: str) -> None:
    """A deep-filter file whose taps come as their own output (only the filtered bins) gives
    ``predict`` those two parts and the same audio as the file that carries them in one output."""
    spec = SignalSpec(output="complex_mask", df_bins=16, df_order=3, df_lookahead=1, frame_multiple=4, layout=layout)
    one = OnnxModel(make_mixing_model(tmp_path / "one.onnx", spec), 1, 1)
    two = OnnxModel(make_mixing_model(tmp_path / "two.onnx", spec, split_taps=True), 1, 1)
    assert [o["name"] for o in two.io_description()["outputs"]] == ["mask", "taps"]
    x = np.random.default_rng(3).uniform(0, 1, (2, 257, 12, 3)).astype(np.float32)
    whole, parts = one.predict(x), two.predict(x)
    assert isinstance(parts, MaskAndTaps)
    assert parts.mask.shape == (2, 257, 12, 2) and parts.taps.shape == (2, 16, 12, 6)
    np.testing.assert_allclose(parts.mask, whole[..., :2], rtol=0, atol=1e-6)
    np.testing.assert_allclose(parts.taps, whole[:, :16, :, 2:], rtol=0, atol=1e-6)
    audio = np.random.default_rng(4).normal(0, 0.1, (16000 + 77, 2)).astype(np.float32)
    clean = two.denoise(audio, 16000)
    np.testing.assert_allclose(clean, one.denoise(audio, 16000), rtol=0, atol=1e-6)
    assert np.abs(clean - audio).max() > 1e-2


def test_a_file_with_other_outputs_is_refused(tmp_path: Path) -> None:
    import onnx

    spec = SignalSpec(output="complex_mask", df_bins=16, df_order=3, df_lookahead=1)
    path = make_mixing_model(tmp_path / "two.onnx", spec, split_taps=True)
    model = onnx.load(str(path))
    model.graph.output[1].name = "extra"
    next(n for n in model.graph.node if "taps" in n.output).output[0] = "extra"
    onnx.save(model, str(path))
    with pytest.raises(ValueError, match="one output or"):
        OnnxModel(path)
