"""Helpers of the end-to-end training tests: run a module as a subprocess, train a tiny
network for one epoch, and the export and serving checks every preset must pass."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
TINY_DEFAULT = json.dumps({"channels": [4, 8], "bottleneck": 16, "dilations": [1, 2], "kernel_freq": 3, "conv_norm": False})
TINY_BAND = json.dumps({"channels": [4, 6], "bottleneck": 16, "dilations": [1, 2, 1]})


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``python *args`` in the project root; fails the test with its output if it fails."""
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def tiny_signal_run(preset: str, dataset: Path, factory: pytest.TempPathFactory, *extra: str) -> Path:
    """One epoch of two batches of a tiny network with a signal-objective preset."""
    out = factory.mktemp(f"run_{preset}")
    options = TINY_BAND if preset.startswith("band") else TINY_DEFAULT
    run("-m", "training.train", "--data", str(dataset), "--preset", preset, "--out", str(out), "--epochs", "1",
        "--steps-per-epoch", "2", "--batch-size", "4", "--val-limit", "4", "--quality-every", "1", "--model-options", options, *extra)
    return out


def history_epochs(run_dir: Path) -> list[int]:
    with open(run_dir / "history.csv") as fh:
        return [int(row["epoch"]) for row in csv.DictReader(fh)]


def check_export_metadata_and_parity(preset: str, run_dir: Path, tmp_path: Path) -> None:
    """Export a run: parity with Keras, and the metadata that makes the file self-describing."""
    from denoise_core.model_file import OnnxModel
    from training.export import check_parity, export_run, load_run

    onnx_path = tmp_path / f"{preset}.onnx"
    export_run(run_dir, onnx_path)
    net, config, result = load_run(run_dir)
    model = OnnxModel(onnx_path)
    assert check_parity(net, onnx_path) < 1e-4
    info = model.info
    assert info.preset == preset and info.name == f"rainclean-{preset}"
    # sample rate, STFT, representation, stats, multiple; a band network is written channels-first
    layout = "channels_first" if preset.startswith("band") else "channels_last"
    assert info.signal.to_dict() == {**config["signal"], "layout": layout}
    assert info.training_commit == config["training_commit"]
    assert info.data_summary == config["data_summary"]
    assert info.training["epochs"] == result["epochs_run"]
    # what reproducing it costs travels with it: dataset build (from the build's stats.json), export
    assert config["dataset_build_seconds"] > 0 and info.training["dataset_build_seconds"] == config["dataset_build_seconds"]
    assert info.training["export_seconds"] > 0 and info.training["seconds"] == result["train_seconds"]
    assert info.signal.frame_multiple == (8 if preset == "seed" else 1)
    # band: two frames; band-offline-df: the tiny network's centred kernels (dilations 1, 2, 1) reach
    # further than the filter's two frames
    lookahead = {"band": 2, "band-offline-df": 4}.get(preset)
    assert info.signal.lookahead_frames == lookahead
    assert dict(model.session.get_modelmeta().custom_metadata_map)["lookahead_frames"] == ("unbounded" if lookahead is None else str(lookahead))
    # dynamic batch and time axes; channels where the layout puts them
    shape, out_shapes = model.session.get_inputs()[0].shape, [o.shape for o in model.session.get_outputs()]
    assert not isinstance(shape[0], int) and not isinstance(shape[2], int)
    channels = 1 if layout == "channels_first" else 3
    # a deep filter's mask and taps come as two outputs whose channels add up
    assert shape[channels] == info.signal.input_channels and sum(o[channels] for o in out_shapes) == info.signal.output_channels


def check_service_serves_export(preset: str, run_dir: Path, dataset: Path, tmp_path: Path) -> None:
    """The real export path feeding the real app: /model-info mirrors the run, /denoise runs it."""
    from denoise_core.model_file import OnnxModel
    from tests.service.svc_helpers import running_app
    from training.export import export_run

    onnx_path = tmp_path / "served.onnx"
    export_run(run_dir, onnx_path)
    config = json.loads((run_dir / "config.json").read_text())
    with np.load(dataset / "test.npz") as z:
        noisy = z["noisy"][1]
    upload = io.BytesIO()
    sf.write(upload, noisy, 16000, subtype="PCM_16", format="WAV")
    with running_app(onnx_path) as client:
        info = client.get("/model-info").json()
        assert info["sha256"] == OnnxModel(onnx_path).sha256
        assert info["signal"] == {**config["signal"], "layout": "channels_first" if preset.startswith("band") else "channels_last"}
        if preset == "band":  # a 512-sample window plus two 256-sample hops of lookahead at 16 kHz
            assert info["latency"] == {"lookahead_frames": 2, "algorithmic_ms": pytest.approx(64.0)}
        response = client.post("/denoise", files={"file": ("noisy.wav", upload.getvalue(), "audio/wav")})
    assert response.status_code == 200, response.text
    served, sr = sf.read(io.BytesIO(response.content), dtype="float32")
    assert sr == 16000 and served.shape == noisy.shape
    direct = OnnxModel(onnx_path).denoise(sf.read(io.BytesIO(upload.getvalue()), dtype="float32")[0][:, None], 16000)[:, 0]
    assert np.max(np.abs(served - direct)) < 2 / 32768  # same result up to 16-bit rounding
