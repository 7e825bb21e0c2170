"""Static int8 quantisation of an exported model: calibrated on real mixtures through the signal
contract, QDQ around the nodes that validation allows, the source's contract kept and the
quantisation recorded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

pytestmark = pytest.mark.training

from denoise_core.model_file import OnnxModel  # noqa: E402
from training.datasets import Dataset  # noqa: E402
from training.export import main as export_main  # noqa: E402
from training.presets import get_preset  # noqa: E402
from training.quantize import calibration_inputs, candidate_nodes, greedy_within, macs_per_frame, main as quantize_main, name_weighted_nodes, within  # noqa: E402
from training.train import build_network  # noqa: E402

TINY = {"channels": [4, 6], "bottleneck": 16, "dilations": [1, 2, 4, 1]}


@pytest.fixture(scope="module")
def float_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny band network with deep filtering, exported to a float model file."""
    run = tmp_path_factory.mktemp("run")
    preset = get_preset("band-offline-df-sep-pesq")
    spec = preset.signal
    net = build_network(preset, spec, 1.0, TINY)
    net.save_weights(str(run / "best-quality.weights.h5"))
    (run / "config.json").write_text(json.dumps({"preset": "band-offline-df-sep-pesq", "signal": spec.to_dict(),
                                                 "train": {"model_options": TINY, "width": 1.0}}))
    out = run / "float.onnx"
    assert export_main(["--run", str(run), "--out", str(out), "--checkpoint", "best-quality.weights.h5"]) == 0
    return out


def test_calibration_sees_what_denoising_feeds_the_network(float_model: Path) -> None:
    model = OnnxModel(float_model, intra_op_threads=1)
    rate = model.spec.sample_rate
    inputs = calibration_inputs(model, [np.zeros(rate * 2, np.float32), np.full(rate * 3, 0.1, np.float32)])
    assert len(inputs) == 2
    assert [x.shape[0] for x in inputs] == [1, 1]
    assert inputs[1].size > inputs[0].size  # a longer recording, more frames
    declared = model.session.get_inputs()[0].shape
    assert all(d == n for d, n in zip(declared, inputs[0].shape) if isinstance(d, int))


def test_the_quantised_file_keeps_the_contract_and_stays_close(float_model: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "int8.onnx"
    assert quantize_main(["--model", str(float_model), "--data", str(tiny_dataset), "--out", str(out), "--count", "2",
                          "--screen-count", "2", "--max-drop-db", "100"]) == 0
    graph = onnx.load(str(out)).graph
    candidates = list(OnnxModel(out, intra_op_threads=1).info.training["quantization"]["node_drops"])
    ops = {n.name: n.op_type for n in graph.node}
    assert {ops[name] for name in candidates} == {"Conv", "MatMul"}
    assert all(dequantized_inputs(graph)[name] == [True, True] for name in candidates)  # activations and weights

    before, after = OnnxModel(float_model, intra_op_threads=1), OnnxModel(out, intra_op_threads=1)
    assert after.spec == before.spec
    assert after.info.version == before.info.version + "-int8"
    record = after.info.training["quantization"]
    assert record["calibration_mixtures"] == 2 and record["source_sha256"] == before.sha256
    val_mixtures = len(Dataset.open(tiny_dataset).split("val").lengths)
    assert record["screen_mixtures"] == min(2, val_mixtures - 2) > 0 and record["float_nodes"] == []
    assert len(record["node_drops"]) == len(name_weighted_nodes(onnx.load(str(float_model)), ("Conv", "MatMul")))

    split = Dataset.open(tiny_dataset).split("val")
    wave = split.noisy[0, : int(split.lengths[0])][:, None]
    reference = before.denoise(wave, before.spec.sample_rate)[:, 0]
    quantised = after.denoise(wave, after.spec.sample_rate)[:, 0]
    assert quantised.shape == reference.shape
    error_db = 10 * np.log10(np.sum(reference**2) / np.sum((quantised - reference) ** 2))
    assert error_db > 20.0


def dequantized_inputs(graph: onnx.GraphProto) -> dict[str, list[bool]]:
    """For each named node, whether each of its first two inputs comes from a DequantizeLinear."""
    producers = {o: n.op_type for n in graph.node for o in n.output}
    return {n.name: [producers.get(i) == "DequantizeLinear" for i in n.input[:2]] for n in graph.node if n.name}


def test_nodes_that_cost_more_than_the_tolerance_stay_float(float_model: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "int8.onnx"
    # no node can cost less than -100 dB alone, so every candidate is measured and none quantised
    assert quantize_main(["--model", str(float_model), "--data", str(tiny_dataset), "--out", str(out), "--count", "2",
                          "--screen-count", "2", "--max-drop-db", "-100"]) == 0
    graph = onnx.load(str(out)).graph
    assert not any(n.op_type == "DequantizeLinear" for n in graph.node)
    record = OnnxModel(out, intra_op_threads=1).info.training["quantization"]
    assert sorted(record["float_nodes"]) == sorted(record["node_drops"]) and record["float_nodes"]
    assert record["tolerances"] == {"si_sdr": -100.0}
    assert abs(record["drops"]["si_sdr"]) < 1e-3  # the float graph itself


def test_a_dnsmos_tolerance_screens_every_node_on_dnsmos_too(float_model: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "int8.onnx"
    # SI-SDR allows anything, DNSMOS OVRL nothing a real node can meet: every node stays float
    assert quantize_main(["--model", str(float_model), "--data", str(tiny_dataset), "--out", str(out), "--count", "2",
                          "--screen-count", "2", "--max-drop-db", "100", "--max-dnsmos-drop", "-100"]) == 0
    record = OnnxModel(out, intra_op_threads=1).info.training["quantization"]
    assert record["tolerances"] == {"si_sdr": 100.0, "dnsmos_ovrl": -100.0}
    assert all(set(d) == {"si_sdr", "dnsmos_ovrl"} for d in record["node_drops"].values())
    assert sorted(record["float_nodes"]) == sorted(record["node_drops"])
    assert not any(n.op_type == "DequantizeLinear" for n in onnx.load(str(out)).graph.node)


def test_the_tolerance_selects_nodes_by_their_measured_drop() -> None:
    drops = {"a": {"si_sdr": 0.01}, "b": {"si_sdr": 0.3}, "c": {"si_sdr": -0.02}, "d": {"si_sdr": 0.05}}
    assert within(drops, {"si_sdr": 0.05}) == ["a", "c", "d"]
    assert within(drops, {"si_sdr": 0.0}) == ["c"]


def test_every_screened_figure_must_stay_within_its_tolerance() -> None:
    drops = {"a": {"si_sdr": 0.01, "dnsmos_ovrl": 0.02}, "b": {"si_sdr": 0.04, "dnsmos_ovrl": 0.0},
             "c": {"si_sdr": 0.2, "dnsmos_ovrl": -0.01}}
    assert within(drops, {"si_sdr": 0.05}) == ["a", "b"]
    assert within(drops, {"si_sdr": 0.05, "dnsmos_ovrl": 0.005}) == ["b"]
    assert within(drops, {"dnsmos_ovrl": 0.005}) == ["b", "c"]


def test_nodes_are_added_while_the_whole_stays_within_the_tolerance() -> None:
    cost = {"a": 0.03, "b": 0.01, "c": 0.04, "d": -0.01}
    dnsmos = {"a": 0.0, "b": 0.01, "c": 0.0, "d": 0.0}
    tried: list[list[str]] = []

    def drop_of(nodes: list[str]) -> dict[str, float]:
        tried.append(nodes)
        return {"si_sdr": sum(cost[n] for n in nodes), "dnsmos_ovrl": sum(dnsmos[n] for n in nodes)}

    assert greedy_within(["a", "b", "c", "d"], drop_of, {"si_sdr": 0.05}) == ["a", "b", "d"]
    assert tried == [["a"], ["a", "b"], ["a", "b", "c"], ["a", "b", "d"]]
    assert greedy_within(["c", "a"], drop_of, {"si_sdr": 0.05}) == ["c"]
    # b alone is within SI-SDR's tolerance but not DNSMOS's, so it stays float
    assert greedy_within(["a", "b", "d"], drop_of, {"si_sdr": 0.05, "dnsmos_ovrl": 0.005}) == ["a", "d"]


def test_multiply_adds_per_frame_follow_weights_and_output_size(float_model: Path, tmp_path: Path) -> None:
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = tmp_path / "prepared.onnx"
    quant_pre_process(str(float_model), str(prepared), skip_symbolic_shape=True)
    graph = onnx.load(str(prepared))
    names = name_weighted_nodes(graph, ("Conv", "MatMul"))
    macs = macs_per_frame(graph, names)
    weights = {i.name: list(i.dims) for i in graph.graph.initializer}
    nodes = {n.name: n for n in graph.graph.node}
    assert set(macs) == set(names) and all(m > 0 for m in macs.values())
    for name in names:
        w = weights[nodes[name].input[1]]
        assert macs[name] % (int(np.prod(w)) // (w[0] if nodes[name].op_type == "Conv" else w[-1])) == 0
    convs_2d = [n for n in names if nodes[n].op_type == "Conv" and len(weights[nodes[n].input[1]]) == 4]
    first = min(convs_2d, key=lambda n: list(nodes).index(n))  # the encoder's first convolution: over every band
    w = weights[nodes[first].input[1]]
    bands = [v for v in graph.graph.value_info if v.name == nodes[first].output[0]][0].type.tensor_type.shape.dim[3].dim_value
    assert macs[first] == int(np.prod(w)) * bands


def test_named_nodes_are_quantised_and_no_others(float_model: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "int8.onnx"
    names = candidate_nodes(float_model)
    chosen = [names[0], names[-1]]
    assert quantize_main(["--model", str(float_model), "--data", str(tiny_dataset), "--out", str(out), "--count", "2",
                          "--screen-count", "2", "--nodes", *chosen]) == 0
    graph = onnx.load(str(out)).graph
    fed = dequantized_inputs(graph)
    assert sorted(n for n in names if fed.get(n) == [True, True]) == sorted(chosen)
    assert not any(fed[n][1] for n in names if n not in chosen)  # their weights stay float
    record = OnnxModel(out, intra_op_threads=1).info.training["quantization"]
    assert record["selection"] == "named" and record["node_drops"] == {}
    assert record["quantised_nodes"] == 2 and record["float_nodes"] == [n for n in names if n not in chosen]
    assert set(record["drops"]) == {"si_sdr"} and 0.0 < record["quantised_macs_share"] < 1.0


def test_a_named_node_that_is_no_candidate_is_refused(float_model: Path, tiny_dataset: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        quantize_main(["--model", str(float_model), "--data", str(tiny_dataset), "--out", str(tmp_path / "q.onnx"),
                       "--count", "2", "--screen-count", "2", "--nodes", "Conv_nowhere"])
    assert exit_info.value.code == 2
    assert "not quantisable nodes of float.onnx: ['Conv_nowhere']" in capsys.readouterr().err
    assert not (tmp_path / "q.onnx").exists()


def test_weighted_nodes_are_named_and_found(float_model: Path) -> None:
    graph = onnx.load(str(float_model))
    names = name_weighted_nodes(graph, ("Conv",))
    assert names and all(n.name for n in graph.graph.node)
    constants = {i.name for i in graph.graph.initializer}
    by_name = {n.name: n for n in graph.graph.node}
    assert all(by_name[n].op_type == "Conv" and by_name[n].input[1] in constants for n in names)
    assert len(names) == sum(1 for n in graph.graph.node if n.op_type == "Conv" and n.input[1] in constants)


@pytest.mark.parametrize("option", ["--count", "--screen-count"])
def test_counts_must_be_positive(option: str, float_model: Path, tiny_dataset: Path, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        quantize_main(["--model", str(float_model), "--data", str(tiny_dataset), "--out", str(tmp_path / "q.onnx"), option, "0"])
    assert exit_info.value.code == 2
    assert "--count and --screen-count must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "q.onnx").exists()
