"""A design's exported network can be timed before it is trained."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

pytestmark = pytest.mark.training

from training.export import export_model, to_onnx  # noqa: E402
from training.onnx_benchmark import main  # noqa: E402
from training.onnx_profile import random_network_input  # noqa: E402
from training.presets import get_preset  # noqa: E402
from training.quantize import candidate_nodes, quantize_every_node  # noqa: E402

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


def test_each_form_gets_a_row_per_design(capsys: pytest.CaptureFixture[str]) -> None:
    forms = ["graph", "subpixel", "transposed"]
    assert main(["--model-options", TINY, "--seconds", "0.5", "--repeats", "1"] + [a for f in forms for a in ("--form", f)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("band ")]
    assert [r[-3] for r in rows] == forms
    assert len({r[-2] for r in rows}) == 1  # the same network, the same parameters


@pytest.mark.parametrize("form", ["graph", "subpixel", "transposed"])
def test_the_export_form_reaches_the_exported_graph(form: str) -> None:
    preset = get_preset("band")
    net = preset.build(preset.signal, {"channels": [4, 6], "bottleneck": 16, "dilations": [1, 2]})
    model = to_onnx(net, preset.signal, form)
    ops = {node.op_type for node in model.graph.node}
    assert ("ConvTranspose" in ops) == (form == "transposed")
    assert (model.producer_name == "rainclean") == (form == "graph")  # tf2onnx names itself


def test_int8_adds_a_quantised_row_per_design(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model-options", TINY_RELU, "--seconds", "0.5", "--repeats", "1", "--int8"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith("band ")]
    assert [r[-3] for r in rows] == ["graph", "graph-int8"]
    assert rows[0][-2] == rows[1][-2]  # one network, timed as float and as int8
    assert 0 < float(rows[1][-1]) < 1


def test_every_candidate_node_is_quantised(tmp_path: Path) -> None:
    preset = get_preset("band")
    net = preset.build(preset.signal, {"channels": [4, 6], "bottleneck": 16, "dilations": [1, 2], "activation": "relu"})
    model, spec = export_model(net, preset.signal, "graph")
    onnx.save(model, str(tmp_path / "f.onnx"))
    count = quantize_every_node(tmp_path / "f.onnx", tmp_path / "q.onnx", [random_network_input(spec, 0.5)])
    assert count == len(candidate_nodes(tmp_path / "f.onnx")) > 0
    ops = [n.op_type for n in onnx.load(str(tmp_path / "q.onnx")).graph.node]
    assert ops.count("DequantizeLinear") >= 2 * count  # an input and a weight per quantised node
