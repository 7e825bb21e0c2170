"""End to end on real data for the deep-filter presets: train briefly, export with parity and
serve the export, start a run from another run's weights, resume from a run's own backup, and
stream a deep filter with bounded lookahead.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.training.pipeline_helpers import (ROOT, TINY_BAND, check_export_metadata_and_parity, check_service_serves_export,
                                             history_epochs, run, tiny_signal_run)

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def band_df_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_signal_run("band-offline-df", tiny_dataset, tmp_path_factory, "--perceptual-weight", "20")


def test_export_metadata_and_parity(band_df_run: Path, tmp_path: Path) -> None:
    check_export_metadata_and_parity("band-offline-df", band_df_run, tmp_path)


def test_service_serves_an_exported_model(band_df_run: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    check_service_serves_export("band-offline-df", band_df_run, tiny_dataset, tmp_path)


def test_a_deep_filter_run_trains_its_taps_and_its_unbounded_lookahead_does_not_stream(band_df_run: Path, tmp_path: Path) -> None:
    """band-offline-df: the taps of the lowest bins are in the exported model and in the
    contract it carries; the streaming export refuses its centred kernels with a clear error."""
    from denoise_core.model_file import OnnxModel
    from training.export import export_run

    assert json.loads((band_df_run / "config.json").read_text())["train"]["perceptual_weight"] == 20.0  # trained with the PESQ-style term
    export_run(band_df_run, tmp_path / "df.onnx")
    model = OnnxModel(tmp_path / "df.onnx")
    spec = model.info.signal
    assert (spec.df_bins, spec.df_order, spec.df_lookahead, spec.output_channels) == (65, 5, 2, 12)
    assert spec.layout == "channels_first"
    assert [(o["name"], o["shape"]) for o in model.io_description()["outputs"]] == [
        ("mask", ["batch", 2, "frames", 257]), ("taps", ["batch", 10, "frames", 65])]
    x = np.random.default_rng(0).uniform(0, 1, (1, 257, 30, 3)).astype(np.float32)
    out = model.predict(x)
    assert out.mask.shape == (1, 257, 30, 2) and out.taps.shape == (1, 65, 30, 10) and np.abs(out.taps).max() > 0
    proc = subprocess.run([sys.executable, "-m", "training.export_stream", "--run", str(band_df_run), "--out", str(tmp_path / "s.onnx")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "unbounded delay in a stream" in proc.stderr


def test_a_new_run_starts_from_another_runs_weights_and_a_missing_file_is_a_clear_error(band_df_run: Path, tiny_dataset: Path,
                                                                                      tmp_path: Path) -> None:
    """--init-weights: one step at a vanishing learning rate keeps the weights it started from
    (BatchNorm's moving statistics, which the step updates, aside)."""
    import keras

    from training.export import load_run

    start = band_df_run / "best-quality.weights.h5"
    out = tmp_path / "fine-tune"
    common = ["--data", str(tiny_dataset), "--preset", "band-offline-df", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2",
              "--val-limit", "2", "--warmup-steps", "0", "--lr", "1e-12", "--quality-every", "1", "--model-options", TINY_BAND,
              "--seed", "1"]  # another seed: another initialisation, unless the weights are loaded
    run("-m", "training.train", *common, "--out", str(out), "--init-weights", str(start))
    assert json.loads((out / "config.json").read_text())["train"]["init_weights"] == str(start)
    before, _, _ = load_run(band_df_run, "best-quality.weights.h5")
    after, _, _ = load_run(out, "best-quality.weights.h5")
    pairs = list(zip(before.trainable_weights, after.trainable_weights))
    assert pairs and all(np.allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), atol=1e-6) for a, b in pairs)
    missing = subprocess.run([sys.executable, "-m", "training.train", *common, "--out", str(tmp_path / "missing"),
                              "--init-weights", str(tmp_path / "nothing.weights.h5")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "nothing.weights.h5: no such file" in missing.stderr
    assert not (tmp_path / "missing").exists()


def test_a_resumed_run_continues_from_its_own_backup_not_from_init_weights(band_df_run: Path, tiny_dataset: Path,
                                                                          tmp_path: Path) -> None:
    """Rerunning a run's command with one more epoch and --init-weights naming other weights
    resumes from the run's backup: its second scored checkpoint still holds its own weights."""
    import keras

    from training.export import load_run

    out = tmp_path / "run"
    common = ["--data", str(tiny_dataset), "--preset", "band-offline-df", "--steps-per-epoch", "1", "--batch-size", "2",
              "--val-limit", "2", "--warmup-steps", "0", "--lr", "1e-12", "--quality-every", "1", "--model-options", TINY_BAND,
              "--out", str(out)]
    run("-m", "training.train", *common, "--epochs", "1", "--init-weights", str(band_df_run / "best-quality.weights.h5"))
    own, _, _ = load_run(out, "quality-1.weights.h5")
    other, _, _ = load_run(band_df_run, "best-quality.weights.h5")
    for w in other.trainable_weights:
        w.assign(w + 1.0)
    other.save_weights(str(tmp_path / "other.weights.h5"))
    run("-m", "training.train", *common, "--epochs", "2", "--init-weights", str(tmp_path / "other.weights.h5"))
    assert history_epochs(out) == [0, 1]
    resumed, _, _ = load_run(out, "quality-2.weights.h5")
    pairs = list(zip(own.trainable_weights, resumed.trainable_weights))
    assert pairs and all(np.allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), atol=1e-6) for a, b in pairs)


def test_a_4_khz_deep_filter_with_bounded_lookahead_trains_exports_and_streams(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory,
                                                                              tmp_path: Path) -> None:
    """band-offline-df4k with two frames of lookahead and separable blocks (the streaming deep
    filter's arm): its taps on 129 bins are trained, exported with parity, and its streaming
    export streams a file as the offline export denoises it."""
    from denoise_core.model_file import OnnxModel
    from denoise_core.signal import enhance_wave
    from denoise_core.streaming import StreamingModel
    from training.export import check_parity, export_run, load_run
    from training.export_stream import export_stream

    options = json.dumps({**json.loads(TINY_BAND), "lookahead": 2, "context": [1], "context_separable": True})
    run_dir = tiny_signal_run("band-offline-df4k", tiny_dataset, tmp_path_factory, "--model-options", options)
    net, _, _ = load_run(run_dir)
    export_run(run_dir, tmp_path / "df4k.onnx")
    assert check_parity(net, tmp_path / "df4k.onnx") < 1e-4
    offline = OnnxModel(tmp_path / "df4k.onnx")
    spec = offline.info.signal
    assert (spec.df_bins, spec.lookahead_frames) == (129, 2)
    export_stream(run_dir, tmp_path / "df4k-stream.onnx")  # checks stream parity itself
    stream = StreamingModel(tmp_path / "df4k-stream.onnx")
    assert stream.lookahead == 2 and stream.latency_ms == pytest.approx(64.0)
    wave = np.random.default_rng(1).normal(0, 0.1, (16000, 1)).astype(np.float32)
    want = enhance_wave(wave[:, 0], spec, offline.predict)
    np.testing.assert_allclose(stream.denoise(wave, 16000)[:, 0], want, rtol=0, atol=1e-4)
