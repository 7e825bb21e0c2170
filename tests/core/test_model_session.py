"""The onnxruntime session a model file gets: memory patterns off unless asked for."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from denoise_core.model_file import OnnxModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from onnx_fixtures import make_constant_mask_model  # noqa: E402


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
