"""A model file's network time, split by operator type and by node."""

from __future__ import annotations

from pathlib import Path

import pytest

from denoise_core.model_file import OnnxModel
from denoise_core.signal import n_frames
from training.onnx_profile import main, profile, report

MODEL = Path(__file__).resolve().parents[2] / "models" / "denoiser.onnx"


def test_every_node_of_the_shipped_file_is_timed_on_input_of_the_asked_length() -> None:
    nodes = profile(MODEL, seconds=0.5, repeats=1)
    assert nodes and all(n.microseconds >= 0 for n in nodes)
    assert [n.microseconds for n in nodes] == sorted((n.microseconds for n in nodes), reverse=True)
    assert "Conv" in {n.op for n in nodes}
    spec = OnnxModel(MODEL).spec
    frames = n_frames(int(0.5 * spec.sample_rate), spec)
    assert any(frames in shape for n in nodes for shape in n.outputs)  # the frame axis of the input it ran on
    text = report(nodes, top=3)
    shares = [float(line.split("%")[0]) for line in text.split("\n\n")[0].splitlines()[1:]]
    assert sum(shares) == pytest.approx(100.0, abs=0.5)
    assert len(text.split("\n\n")[1].splitlines()) == 1 + 3


def test_a_missing_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([str(tmp_path / "none.onnx")])
    assert exit_info.value.code == 2 and "no model file" in capsys.readouterr().err
