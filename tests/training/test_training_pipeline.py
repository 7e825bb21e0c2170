"""End to end on real data for the reference and first-generation presets: train each briefly,
resume, export to ONNX with parity, read the metadata back, serve it, denoise a file and evaluate.

Like facebookresearch/denoiser's CI smoke test: tiny models, a handful of files. The band and
deep-filter presets have their own modules, so that the test processes share the work.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.training.pipeline_helpers import (ROOT, TINY_DEFAULT, check_export_metadata_and_parity, check_service_serves_export,
                                             history_epochs, run, tiny_signal_run)

pytestmark = pytest.mark.training


@pytest.fixture(scope="module")
def default_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_signal_run("default", tiny_dataset, tmp_path_factory)


@pytest.fixture(scope="module")
def complex_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_signal_run("complex", tiny_dataset, tmp_path_factory)


@pytest.fixture(scope="module")
def seed_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run_seed")
    proc = run("-m", "training.train", "--data", str(tiny_dataset), "--preset", "seed", "--out", str(out), "--epochs", "1",
               "--batch-size", "8", "--width", "0.05")
    assert "seed MSE on normalised spectrograms" in proc.stdout
    return out


def test_seed_run_reports_mse_on_every_split(seed_run: Path) -> None:
    result = json.loads((seed_run / "result.json").read_text())
    for split in ("train", "val", "test"):
        assert 0.0 < result["metrics"][f"{split}_mse"] < 1.0
    config = json.loads((seed_run / "config.json").read_text())
    assert config["signal"]["n_fft"] == 1199 and config["signal"]["hop_length"] == 304
    assert config["learning_rate"] == pytest.approx(0.01 * 8 / 256)
    assert (seed_run / "tensorboard").is_dir() and (seed_run / "best.weights.h5").exists()


def test_seed_batchnorm_statistics_are_reestimated(seed_run: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    result = json.loads((seed_run / "result.json").read_text())
    assert result["batchnorm_reestimated"] == 6
    assert set(result["metrics_before_batchnorm"]) == set(result["metrics"])
    # a run finished before the trainer did it gets it from the command, once
    old_run = tmp_path / "old_seed_run"
    shutil.copytree(seed_run, old_run)
    old = {k: v for k, v in result.items() if k not in ("batchnorm_reestimated", "metrics_before_batchnorm")}
    (old_run / "result.json").write_text(json.dumps(old))
    out = run("-m", "training.batchnorm", "--run", str(old_run), "--data", str(tiny_dataset)).stdout
    assert "re-estimated 6 BatchNorm layers" in out
    redone = json.loads((old_run / "result.json").read_text())
    assert redone["batchnorm_reestimated"] == 6 and redone["metrics_before_batchnorm"] == old["metrics"]
    assert all(0.0 < v < 1.0 for v in redone["metrics"].values())
    assert "already re-estimated" in run("-m", "training.batchnorm", "--run", str(old_run), "--data", str(tiny_dataset)).stdout


def test_training_resumes_from_last_epoch(default_run: Path, tiny_dataset: Path) -> None:
    assert history_epochs(default_run) == [0]
    run("-m", "training.train", "--data", str(tiny_dataset), "--preset", "default", "--out", str(default_run), "--epochs", "2",
        "--steps-per-epoch", "2", "--batch-size", "4", "--val-limit", "4", "--model-options", TINY_DEFAULT)
    assert history_epochs(default_run) == [0, 1]  # epoch 0 was not trained again


def test_loss_balance_measures_both_terms_at_init_and_checkpoint(default_run: Path, seed_run: Path, tiny_dataset: Path) -> None:
    out = run("-m", "training.loss_balance", "--run", str(default_run), "--data", str(tiny_dataset), "--batches", "1", "--batch-size", "2").stdout
    rows = {}
    for line in out.splitlines():
        for label in ("initial", "best checkpoint"):
            if line.startswith(label):
                rows[label] = [float(v) for v in line[len(label):].split()]
    assert set(rows) == {"initial", "best checkpoint"}, out
    for loss, mse, g_wave, g_mag, equal, share in rows.values():
        assert mse > 0 and g_wave > 0 and g_mag > 0 and 0 < share < 1
        assert equal == pytest.approx(g_wave / g_mag, rel=2e-3)
    assert rows["initial"][0] != rows["best checkpoint"][0]  # the checkpoint's weights were loaded
    refused = subprocess.run([sys.executable, "-m", "training.loss_balance", "--run", str(seed_run), "--data", str(tiny_dataset)],
                             cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0 and "only the signal objective" in refused.stderr


@pytest.mark.parametrize("preset", ["default", "complex", "seed"])
def test_export_metadata_and_parity(preset: str, default_run: Path, complex_run: Path, seed_run: Path, tmp_path: Path) -> None:
    check_export_metadata_and_parity(preset, {"default": default_run, "complex": complex_run, "seed": seed_run}[preset], tmp_path)


def test_training_and_service_features_are_the_same(tiny_dataset: Path, shared_data: Path) -> None:
    """One WAV through the training feature path and through the service's decode path."""
    from denoise_core.signal import decode_audio, load_mono, model_input, resample, to_mono
    from training.datasets import Dataset, seed_arrays, signal_batch, training_stats
    from training.presets import get_preset

    flac = sorted((shared_data / "LibriSpeech").rglob("*.flac"))[0]
    wave16 = load_mono(flac, 16000)[:32000]
    stereo = np.stack([wave16, wave16], axis=1)
    upload = io.BytesIO()
    sf.write(upload, resample(wave16, 16000, 44100)[:, None].repeat(2, 1), 44100, subtype="FLOAT", format="WAV")
    audio, sr = decode_audio(upload.getvalue())
    served = resample(to_mono(audio), sr, 16000)
    assert np.allclose(to_mono(stereo), wave16)
    data = Dataset.open(tiny_dataset)
    for name in ("seed", "default"):
        preset = get_preset(name)
        spec = preset.signal.with_stats(*training_stats(data, preset.signal))
        length = min(len(served), len(wave16)) // spec.hop_length * spec.hop_length
        if name == "seed":
            trained = seed_arrays(wave16[None, :length], spec)[0, ..., 0]
        else:
            trained = signal_batch(wave16[None, :length], wave16[None, :length], spec)[0]["features"][0, ..., 0]
        np.testing.assert_array_equal(trained, model_input(wave16[:length], spec))
        # the service's decode path (44.1 kHz float stereo -> mono 16 kHz) gives the same features
        diff = np.abs(model_input(served[:length], spec) - model_input(wave16[:length], spec))
        assert float(np.median(diff)) < 0.02


def test_denoise_file_and_evaluate(default_run: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    from denoise_core.model_file import OnnxModel
    from training.export import export_run

    onnx_path = tmp_path / "model.onnx"
    export_run(default_run, onnx_path)
    with np.load(tiny_dataset / "test.npz") as z:
        noisy = z["noisy"][0]
    out = OnnxModel(onnx_path).denoise(noisy[:, None], 16000)
    assert out.shape == (noisy.shape[0], 1) and np.all(np.isfinite(out))
    assert not np.allclose(out[:, 0], noisy)  # the network really ran
    report_dir = tmp_path / "eval"
    run("-m", "training.evaluate", "--data", str(tiny_dataset), "--model", str(onnx_path), "--out", str(report_dir),
        "--limit", "3", "--peers", "noisereduce", "--no-dnsmos", "--quiet")
    report = json.loads((report_dir / "report.json").read_text())
    text = json.dumps(report)
    assert "si_sdr" in text and "noisereduce" in text
    assert (report_dir / "report.md").exists()


@pytest.mark.parametrize("preset", ["default", "complex"])
def test_service_serves_an_exported_model(preset: str, default_run: Path, complex_run: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    check_service_serves_export(preset, {"default": default_run, "complex": complex_run}[preset], tiny_dataset, tmp_path)


def test_a_built_dataset_names_the_source_recording_of_each_noise_clip_and_the_mixer_balances_them(tiny_dataset: Path) -> None:
    from training.datasets import Dataset, MixerConfig, OnTheFlyMixer
    from training.presets import get_preset

    data = Dataset.open(tiny_dataset)
    noise, sources = data.noise("train"), data.noise_sources("train")
    assert sources is not None and len(sources) == len(noise)
    categories = {s.split(":", 1)[0] for s in sources}
    assert categories == {"rain", "thunderstorm"}
    assert len(set(sources)) < len(sources)  # takes of one recording share its source
    spec = get_preset("band-offline-df").signal
    mixer = OnTheFlyMixer(data.split("train"), noise, spec, batch_size=2, seed=0,
                          config=MixerConfig(crop_seconds=1.0, noise_balance=1.0), noise_sources=sources)
    assert mixer.clip_weights is not None
    _, counts = np.unique(sources, return_counts=True)
    per_source = {s: mixer.clip_weights[sources == s].sum() for s in set(sources)}
    np.testing.assert_allclose(list(per_source.values()), 1 / len(counts))  # every recording equally likely
    inputs, targets = next(iter(mixer))
    assert targets["wave"].shape == (2, mixer.length)
