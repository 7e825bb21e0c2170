"""`python -m training.evaluation.chunking`: one pass against overlapping chunks on long files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from onnx import TensorProto, helper

from denoise_core.model_file import ModelInfo, OnnxModel
from denoise_core.signal import SignalSpec
from tests.onnx_fixtures import INPUT_NAME, OUTPUT_NAME, make_constant_mask_model, save_model
from training.datasets import SplitArrays
from training.evaluation.chunking import compare_overlaps, join_mixtures, main, processed_per_second

SR = 16000


def make_whole_input_model(path: Path, spec: SignalSpec) -> Path:
    """A mask model whose mask at every frame is the sigmoid of the input's mean over all frames:
    its output depends on where a chunk starts and ends."""
    x = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", spec.n_freq, "frames", 1])
    y = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", spec.n_freq, "frames", 1])
    nodes = [helper.make_node("ReduceMean", [INPUT_NAME], ["mean"], axes=[2], keepdims=1),
             helper.make_node("Sigmoid", ["mean"], ["gain"]),
             helper.make_node("Shape", [INPUT_NAME], ["shape"]),
             helper.make_node("Expand", ["gain", "shape"], [OUTPUT_NAME])]
    model = helper.make_model(helper.make_graph(nodes, "whole", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return save_model(model, ModelInfo(name="whole", version="0.0.0-test", preset="test", signal=spec,
                                       data_summary={"speakers": {"train": 1}}, evaluation={}), path)


@pytest.fixture(scope="module")
def mixtures(shared_data: Path) -> SplitArrays:
    """Four real utterances, each with real rain under it at 5 dB SNR, padded to one length."""
    speech = [sf.read(p, dtype="float32")[0] for p in sorted((shared_data / "LibriSpeech").rglob("*.flac"))[:4]]
    rain = sf.read(sorted((shared_data / "ESC-50" / "audio").glob("*-10.wav"))[0], dtype="float32")[0]
    width = max(len(s) for s in speech)
    clean, noisy = np.zeros((4, width), np.float32), np.zeros((4, width), np.float32)
    for i, s in enumerate(speech):
        noise = np.resize(rain, len(s))
        noise *= np.sqrt(np.mean(s ** 2) / np.mean(noise ** 2)) / 10 ** (5 / 20)
        clean[i, : len(s)], noisy[i, : len(s)] = s, s + noise
    return SplitArrays(clean=clean, noisy=noisy, lengths=np.array([len(s) for s in speech]))


def test_files_join_consecutive_mixtures_and_drop_the_remainder(mixtures: SplitArrays) -> None:
    lengths = mixtures.lengths
    files = join_mixtures(mixtures, (lengths[0] + 1) / SR, SR)
    assert len(files) == 2  # mixtures 0+1 and 2+3
    np.testing.assert_array_equal(files[0].clean, np.concatenate([mixtures.clean[0, : lengths[0]], mixtures.clean[1, : lengths[1]]]))
    np.testing.assert_array_equal(files[1].noisy[: lengths[2]], mixtures.noisy[2, : lengths[2]])
    assert len(join_mixtures(mixtures, (lengths[0] + 1) / SR, SR, files=1)) == 1
    assert join_mixtures(mixtures, lengths.sum() / SR + 1, SR) == []


def test_processed_audio_grows_with_the_overlap() -> None:
    n = 60 * SR
    loads = [processed_per_second(n, 10.0, overlap, SR, 256) for overlap in (0.0, 0.25, 1.0)]
    assert loads[0] == pytest.approx(1.0, abs=1e-3) and loads[0] < loads[1] < loads[2] < 1.2
    assert processed_per_second(5 * SR, 10.0, 1.0, SR, 256) == 1.0


def test_a_frame_local_network_is_not_moved_by_chunking(mixtures: SplitArrays, tmp_path: Path) -> None:
    model = OnnxModel(make_constant_mask_model(tmp_path / "gain.onnx", gain=0.5), intra_op_threads=1)
    files = join_mixtures(mixtures, 12.0, SR)
    rows = compare_overlaps(model, files, 4.0, [1.0, 0.25])
    assert [r["chunking"] for r in rows] == ["one pass", "1 s", "0.25 s"]
    for r in rows[1:]:
        assert r["snr_one_pass_worst"] > 80 and abs(r["d_si_sdr"]) < 1e-3 and abs(r["d_pesq"]) < 1e-3
    assert rows[0]["si_sdr"] == pytest.approx(rows[1]["si_sdr"], abs=1e-3)


def test_a_network_that_sees_the_whole_chunk_is_moved(mixtures: SplitArrays, tmp_path: Path) -> None:
    model = OnnxModel(make_whole_input_model(tmp_path / "whole.onnx", SignalSpec(output="mask")), intra_op_threads=1)
    rows = compare_overlaps(model, join_mixtures(mixtures, 12.0, SR), 4.0, [1.0, 0.25])
    assert all(np.isfinite(r["snr_one_pass_worst"]) and r["snr_one_pass_worst"] < 60 for r in rows[1:])
    assert rows[1]["processed"] > rows[2]["processed"] > 1.0


def test_the_command_prints_one_row_per_chunking(mixtures: SplitArrays, tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "stats.json").write_text(json.dumps({}))
    np.savez(data / "val.npz", clean=mixtures.clean, noisy=mixtures.noisy, lengths=mixtures.lengths,
             speakers=np.zeros(len(mixtures.lengths), np.int64))
    model = make_constant_mask_model(tmp_path / "pass.onnx")
    assert main(["--data", str(data), "--model", str(model), "--seconds", "12", "--chunk", "4", "--overlaps", "1", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "| one pass | 1.000 |" in out and "| 1 s |" in out and "| 0.5 s |" in out
    assert main(["--data", str(data), "--model", str(model), "--seconds", "1000", "--chunk", "4", "--overlaps", "1"]) == 2
    with pytest.raises(SystemExit):
        main(["--data", str(data), "--model", str(model), "--chunk", "4", "--overlaps", "4"])

