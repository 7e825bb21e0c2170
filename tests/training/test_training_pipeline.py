"""End to end on real data: build a tiny dataset, train each preset briefly, resume,
export to ONNX with parity, read the metadata back, denoise a file and evaluate.

Like facebookresearch/denoiser's CI smoke test: tiny models, a handful of files.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[2]
TINY_DEFAULT = json.dumps({"channels": [4, 8], "bottleneck": 16, "dilations": [1, 2], "kernel_freq": 3, "conv_norm": False})
TINY_BAND = json.dumps({"channels": [4, 6], "bottleneck": 16, "dilations": [1, 2, 1]})

pytestmark = pytest.mark.training


def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    out = tmp_path_factory.mktemp("dataset")
    run("-m", "training.data", "build", "--librispeech", str(shared_data / "LibriSpeech"), "--esc50", str(shared_data / "ESC-50"),
        "--out", str(out), "--segment", "--mix", "snr", "--max-utterances", "14", "--quiet")
    return out


def tiny_signal_run(preset: str, dataset: Path, factory: pytest.TempPathFactory, *extra: str) -> Path:
    """One epoch of two batches of a tiny network with a signal-objective preset."""
    out = factory.mktemp(f"run_{preset}")
    options = TINY_BAND if preset.startswith("band") else TINY_DEFAULT
    run("-m", "training.train", "--data", str(dataset), "--preset", preset, "--out", str(out), "--epochs", "1",
        "--steps-per-epoch", "2", "--batch-size", "4", "--val-limit", "4", "--quality-every", "1", "--model-options", options, *extra)
    return out


@pytest.fixture(scope="module")
def band_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_signal_run("band", tiny_dataset, tmp_path_factory)


@pytest.fixture(scope="module")
def band_ctx_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_signal_run("band-ctx", tiny_dataset, tmp_path_factory, "--precision", "mixed_bfloat16")


@pytest.fixture(scope="module")
def band_df_run(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_signal_run("band-offline-df", tiny_dataset, tmp_path_factory, "--perceptual-weight", "20")


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


def history_epochs(run_dir: Path) -> list[int]:
    with open(run_dir / "history.csv") as fh:
        return [int(row["epoch"]) for row in csv.DictReader(fh)]


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


@pytest.mark.parametrize("preset", ["default", "complex", "seed", "band", "band-offline-df"])
def test_export_metadata_and_parity(preset: str, default_run: Path, complex_run: Path, seed_run: Path, band_run: Path, band_df_run: Path,
                                    tmp_path: Path) -> None:
    from denoise_core.model_file import OnnxModel
    from training.export import check_parity, export_run, load_run

    run_dir = {"default": default_run, "complex": complex_run, "seed": seed_run, "band": band_run, "band-offline-df": band_df_run}[preset]
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
    shape, out_shape = model.session.get_inputs()[0].shape, model.session.get_outputs()[0].shape
    assert not isinstance(shape[0], int) and not isinstance(shape[2], int)
    channels = 1 if layout == "channels_first" else 3
    assert shape[channels] == info.signal.input_channels and out_shape[channels] == info.signal.output_channels


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


@pytest.mark.parametrize("preset", ["default", "complex", "band", "band-offline-df"])
def test_service_serves_an_exported_model(preset: str, default_run: Path, complex_run: Path, band_run: Path, band_df_run: Path,
                                          tiny_dataset: Path, tmp_path: Path) -> None:
    """The real export path feeding the real app: /model-info mirrors the run, /denoise runs it."""
    from denoise_core.model_file import OnnxModel
    from tests.service.svc_helpers import running_app
    from training.export import export_run

    run_dir = {"default": default_run, "complex": complex_run, "band": band_run, "band-offline-df": band_df_run}[preset]
    onnx_path = tmp_path / "served.onnx"
    export_run(run_dir, onnx_path)
    config = json.loads((run_dir / "config.json").read_text())
    with np.load(tiny_dataset / "test.npz") as z:
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


def test_step_benchmark_times_each_design(tiny_dataset: Path) -> None:
    wider = json.dumps({**json.loads(TINY_DEFAULT), "bottleneck": 32})
    out = run("-m", "training.step_benchmark", "--data", str(tiny_dataset), "--model-options", TINY_DEFAULT, "--model-options", wider,
              "--steps", "1", "--batch-size", "2", "--crop-seconds", "1", "--precision", "float32", "--precision", "mixed_bfloat16").stdout
    rows = [line.split(maxsplit=1)[1].rsplit(maxsplit=4) for line in out.splitlines()[1:] if line.startswith("default ")]
    assert [(json.loads(r[0]), r[1]) for r in rows] == [(json.loads(o), p) for o in (TINY_DEFAULT, wider) for p in ("float32", "mixed_bfloat16")], out
    params = [int(r[2]) for r in rows]
    assert 0 < params[0] == params[1] < params[2] == params[3]
    assert all(float(r[3]) > 0 and float(r[4]) > 0 for r in rows)


def test_step_benchmark_times_each_preset(tiny_dataset: Path) -> None:
    out = run("-m", "training.step_benchmark", "--data", str(tiny_dataset), "--preset", "band", "--preset", "band-mask",
              "--model-options", TINY_BAND, "--steps", "1", "--batch-size", "2", "--crop-seconds", "1", "--wave-loss", "si_sdr",
              "--threads", "1", "--perceptual-weight", "20").stdout
    assert out.startswith("wave loss: si_sdr + 20 x perceptual; TensorFlow intra-op threads: 1\n"), out
    rows = [line.split() for line in out.splitlines()[1:] if line.startswith("band")]
    assert [r[0] for r in rows] == ["band", "band-mask"], out
    assert all(float(r[-1]) > 0 for r in rows)
    assert int(rows[0][-3]) > int(rows[1][-3])  # the complex mask's output layer has two channels


def test_step_benchmark_compiles_each_presets_perceptual_term_unless_told_otherwise(tiny_dataset: Path) -> None:
    from training.datasets import Dataset
    from training.graph import negative_si_sdr_loss
    from training.step_benchmark import step_model

    data, options = Dataset.open(tiny_dataset), json.loads(TINY_BAND)
    assert step_model(data, "band-offline-df", options, 2, 1.0)[0].loss["wave"] is negative_si_sdr_loss
    assert step_model(data, "band-offline-df-pesq", options, 2, 1.0)[0].loss["wave"] is not negative_si_sdr_loss
    assert step_model(data, "band-offline-df-pesq", options, 2, 1.0, perceptual_weight=0.0)[0].loss["wave"] is negative_si_sdr_loss


def test_step_profile_splits_a_step_by_op_type_and_layer(tiny_dataset: Path) -> None:
    out = run("-m", "training.step_profile", "--data", str(tiny_dataset), "--preset", "band-offline", "--model-options", TINY_BAND,
              "--steps", "2", "--batch-size", "2", "--crop-seconds", "1", "--top", "1000").stdout
    header, rest = out.split("\n", 1)
    assert header.startswith("band-offline: ") and float(header.split()[1]) > 0, out
    types, layers = rest.split("  layer\n")
    assert "MatMul" in types and "StridedSliceGrad" not in types, out  # the training graph slices cheaply
    names = [line.split(maxsplit=2)[2] for line in layers.splitlines()]
    assert "bwd bandnet/crop_bands" in names and "fwd bandnet/enc0_conv" in names, out
    assert any(n.startswith("fwd mask_to_signal/") for n in names), out


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
    assert spec.layout == "channels_first" and model.io_description()["outputs"][0]["shape"] == ["batch", 12, "frames", 257]
    x = np.random.default_rng(0).uniform(0, 1, (1, 257, 30, 3)).astype(np.float32)
    out = model.predict(x)
    assert np.abs(out[:, :65, :, 2:]).max() > 0 and np.all(out[:, 65:, :, 2:] == 0)
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
