"""A design's exported network can be timed before it is trained."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.training

from training.export import to_onnx  # noqa: E402
from training.onnx_benchmark import main  # noqa: E402
from training.presets import get_preset  # noqa: E402

TINY = '{"channels": [4, 6], "bottleneck": 16, "dilations": [1, 2]}'
TINY_RELU = '{"channels": [4, 6], "bottleneck": 16, "dilations": [1, 2], "activation": "relu"}'


def test_prints_one_timed_row_per_design(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model-options", TINY, "--model-options", TINY_RELU, "--seconds", "0.5", "1", "--repeats", "1"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("band ")]
    assert len(rows) == 2
    for row in rows:
        figures = [float(v) for v in row[-2:]]
        assert all(0 < f < 1 for f in figures)  # network seconds per audio second, far below real time
    assert int(rows[0][-3]) == int(rows[1][-3]) > 0  # the activation adds no parameters


@pytest.mark.parametrize("activation,exported", [("elu", "Elu"), ("relu", "Relu")])
def test_the_activation_option_reaches_the_exported_graph(activation: str, exported: str) -> None:
    preset = get_preset("band")
    net = preset.build(preset.signal, {"channels": [4, 6], "bottleneck": 16, "dilations": [1, 2], "activation": activation})
    ops = {node.op_type for node in to_onnx(net, preset.signal).graph.node}
    assert exported in ops and ({"Elu", "Relu"} - {exported}).isdisjoint(ops)


def test_transposed_adds_the_unrewritten_form_of_each_design(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model-options", TINY, "--seconds", "0.5", "--repeats", "1", "--transposed"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("band ")]
    assert [r[-3] for r in rows] == ["sub-pixel", "transposed"]
    assert rows[0][-2] == rows[1][-2]  # the same network, the same parameters


@pytest.mark.parametrize("subpixel,exported", [(True, "Conv"), (False, "ConvTranspose")])
def test_the_decoder_form_reaches_the_exported_graph(subpixel: bool, exported: str) -> None:
    preset = get_preset("band")
    net = preset.build(preset.signal, {"channels": [4, 6], "bottleneck": 16, "dilations": [1, 2]})
    ops = {node.op_type for node in to_onnx(net, preset.signal, subpixel).graph.node}
    assert exported in ops and (subpixel == ("ConvTranspose" not in ops))
