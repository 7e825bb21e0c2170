"""End to end on real data for the band presets: train briefly, keep the best-quality checkpoint,
resume a killed run on its step schedule, export both forms with parity and serve the export.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.training.pipeline_helpers import (ROOT, TINY_BAND, check_export_metadata_and_parity, check_service_serves_export,
                                             history_epochs, tiny_signal_run)

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def band_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_signal_run("band", tiny_dataset, tmp_path_factory)


@pytest.fixture(scope="module")
def band_ctx_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_signal_run("band-ctx", tiny_dataset, tmp_path_factory, "--precision", "mixed_bfloat16")


def test_export_metadata_and_parity(band_run: Path, tmp_path: Path) -> None:
    check_export_metadata_and_parity("band", band_run, tmp_path)


def test_service_serves_an_exported_model(band_run: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    check_service_serves_export("band", band_run, tiny_dataset, tmp_path)


def test_band_run_keeps_its_best_quality_checkpoint(band_run: Path) -> None:
    from training.quality import read_log

    rows = read_log(band_run)
    assert [r["epoch"] for r in rows] == ["1"] and float(rows[0]["score"]) > 0
    assert (band_run / "best-quality.weights.h5").exists()
    assert (band_run / f"quality-{rows[0]['step']}.weights.h5").exists()  # every scored checkpoint is kept
    config = json.loads((band_run / "config.json").read_text())
    assert config["train"]["wave_loss"] == "si_sdr+spectral" and config["train"]["lr_schedule"] == "cosine-steps"


def test_killed_band_run_resumes_on_the_same_step_schedule(tiny_dataset: Path, tmp_path: Path) -> None:
    """SIGKILL after the first epoch; the same command finishes the run where the backup left it,
    with the step count and the cosine learning rate carried on from the optimiser."""
    import math
    import time

    out = tmp_path / "killed"
    args = [sys.executable, "-m", "training.train", "--data", str(tiny_dataset), "--preset", "band", "--out", str(out),
            "--epochs", "3", "--steps-per-epoch", "2", "--batch-size", "2", "--val-limit", "2", "--warmup-steps", "0",
            "--lr", "0.002", "--quality-every", "1", "--model-options", TINY_BAND]  # scoring slows each epoch
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not ((out / "history.csv").exists() and history_epochs(out)):
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    done_before = history_epochs(out)
    assert done_before and done_before[-1] < 2, "the run finished before it could be killed"
    assert not (out / "result.json").exists()
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True, timeout=600)
    with open(out / "history.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]  # no epoch trained twice
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    for r in rows:
        progress = int(r["step"]) / 6
        assert float(r["learning_rate"]) == pytest.approx(0.002 * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress))), rel=1e-4)
    assert (out / "result.json").exists()
    from training.quality import read_log

    assert [r["epoch"] for r in read_log(out)] == ["1", "2", "3"]  # scored once each, across the kill


def test_a_preset_with_model_options_records_them_and_exports_both_forms(band_ctx_run: Path, tmp_path: Path) -> None:
    """band-ctx, trained in mixed bfloat16: the preset's options under the command line's, recorded
    whole, so both exports rebuild its network (in float32) from the float32 weights."""
    from denoise_core.model_file import OnnxModel
    from training.export import check_parity, export_run, load_run
    from training.export_stream import export_stream
    from training.presets import get_preset

    config = json.loads((band_ctx_run / "config.json").read_text())
    assert config["train"]["model_options"] == {**get_preset("band-ctx").model_options, **json.loads(TINY_BAND)}
    assert config["train"]["precision"] == "mixed_bfloat16"
    assert (band_ctx_run / "best-quality.weights.h5").exists()  # scored by its float32 twin
    net, _, _ = load_run(band_ctx_run)
    assert net.get_layer("enc0_conv").compute_dtype == "float32"  # model.keras holds the float32 network
    checkpoint, _, _ = load_run(band_ctx_run, "best-quality.weights.h5")
    assert checkpoint.get_layer("enc0_conv").compute_dtype == "float32"
    assert any("_ctx" in layer.name for layer in net.layers)
    offline = tmp_path / "ctx.onnx"
    export_run(band_ctx_run, offline)
    assert check_parity(net, offline) < 1e-4
    assert OnnxModel(offline).info.preset == "band-ctx" and OnnxModel(offline).info.signal.lookahead_frames == 2
    stream = export_stream(band_ctx_run, tmp_path / "ctx-stream.onnx")  # checks stream parity itself
    assert stream.name == "rainclean-band-ctx-stream"
