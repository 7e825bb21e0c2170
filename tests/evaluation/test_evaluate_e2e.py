"""End to end: `python -m training.evaluate` on a tiny dataset with a pass-through model.

A pass-through model must score exactly like the noisy input, which shows the model
goes through the same cropping, alignment and scoring as everything else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import soundfile as sf

from denoise_core.model_file import OnnxModel
from training.evaluation.metadata import content_sha256

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evaluation_fixtures import make_tiny_dataset  # noqa: E402
from onnx_fixtures import make_constant_mask_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TOL = {"si_sdr": 0.01, "pesq": 0.01, "stoi": 1e-3, "dnsmos_ovrl": 0.02, "dnsmos_sig": 0.02, "dnsmos_bak": 0.02,
       "seed_mse": 1e-4}


@pytest.fixture(scope="module")
def evaluated(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    data = make_tiny_dataset(shared_data, tmp / "data", n=4)
    model = make_constant_mask_model(tmp / "passthrough.onnx")
    before = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    before_content = content_sha256(model)
    out, card = tmp / "out", tmp / "models" / "README.md"
    cmd = [sys.executable, "-m", "training.evaluate", "--data", str(data), "--model", str(model), "--out", str(out),
           "--limit", "3", "--peers", "noisereduce,rnnoise", "--examples", "2", "--model-card", str(card),
           "--write-metadata", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    return {"tmp": tmp, "out": out, "card": card, "model": model, "report": report, "stdout": proc.stdout,
            "before": before, "before_content": before_content}


def test_passthrough_scores_equal_the_noisy_input(evaluated):
    report = evaluated["report"]
    assert report["order"] == ["noisy", "model", "noisereduce", "rnnoise"]
    assert report["data"]["mixtures_evaluated"] == 3
    for rec in report["per_mixture"]:
        for metric, tol in TOL.items():
            assert rec["scores"]["model"][metric] == pytest.approx(rec["scores"]["noisy"][metric], abs=tol), (rec["id"], metric)
    overall = report["results"]["overall"]
    for metric, tol in TOL.items():
        assert overall["model"][metric] is not None
        assert report["results"]["margins"]["noisy"]["overall"][metric] == pytest.approx(0.0, abs=tol)
    # per category and per SNR come from the manifest
    assert set(report["results"]["by_category"]) <= {"rain", "thunderstorm"}
    assert all(k.endswith(" dB") for k in report["results"]["by_snr"])
    # DNSMOS for every system, overall and per group, with its provenance
    assert report["dnsmos"]["available"] is True and "sig_bak_ovr.onnx" in report["dnsmos"]["model"]
    print(f"DNSMOS: {report['dnsmos']['clips_scored']} clips, {report['dnsmos']['cpu_seconds']:.1f} CPU s", file=sys.stderr)
    for group in ("by_category", "by_snr"):
        for table in report["results"][group].values():
            assert all(1.0 <= table[s]["dnsmos_ovrl"] <= 5.0 for s in report["order"])
    assert all(1.0 <= overall[s][m] <= 5.0 for s in report["order"] for m in ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"))


def test_peers_ran_with_delays_and_costs(evaluated):
    systems = evaluated["report"]["systems"]
    assert systems["rnnoise"]["measured_delay_samples_16k"] == 320
    assert systems["noisereduce"]["measured_delay_samples_16k"] == 0
    for name in ("model", "noisereduce", "rnnoise"):
        assert systems[name]["cpu_s_per_audio_s"] > 0 and systems[name]["wall_s_per_audio_s"] > 0
    # RNNoise really denoises: with its delay undone it beats the noisy input on SI-SDR
    overall = evaluated["report"]["results"]["overall"]
    assert overall["rnnoise"]["si_sdr"] > overall["noisy"]["si_sdr"] + 2.0


def test_report_files(evaluated):
    out, report = evaluated["out"], evaluated["report"]
    md = (out / "report.md").read_text()
    for text in ("## Overall", "## Per noise category", "## Per SNR", "noisereduce", "RNNoise", "Margins", "DNSMOS OVRL",
                 "DNSMOS SIG", "DNSMOS BAK", "sig_bak_ovr.onnx"):
        assert text in md
    assert (out / "spectrogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    wavs = sorted((out / "examples").glob("*.wav"))
    triplets = {w.name.rsplit("_", 1)[0] for w in wavs}
    assert len(triplets) >= 2
    for mix in triplets:
        for role in ("noisy", "denoised", "clean"):
            audio, sr = sf.read(out / "examples" / f"{mix}_{role}.wav")
            assert sr == 16000 and audio.ndim == 1 and np.abs(audio).max() > 0.01
    env = report["environment"]
    assert env["cpu_count"] and env["packages"]["pesq"] and report["model"]["sha256"]


def test_model_card_is_generated_from_the_report(evaluated):
    card, report = evaluated["card"], evaluated["report"]
    text = card.read_text()
    assert (card.parent / "passthrough_spectrogram.png").exists()
    assert "passthrough_spectrogram.png" in text
    noisy_sisdr = f"{report['results']['overall']['noisy']['si_sdr']:.2f}"
    assert noisy_sisdr in text
    assert "DNSMOS OVRL" in text and f"{report['results']['overall']['noisy']['dnsmos_ovrl']:.2f}" in text
    for text_part in ("CC BY 4.0", "CC BY-NC 3.0", "not cleared", "8 kHz", "female", "thunderstorm", "noisereduce"):
        assert text_part in text
    assert "A peer beats the model" in text or "No peer beats the model" in text


def test_metadata_written_back_and_readable(evaluated):
    model_path, report = evaluated["model"], evaluated["report"]
    model = OnnxModel(model_path)
    evaluation = model.info.evaluation
    assert evaluation["overall"]["model"]["si_sdr"] == pytest.approx(report["results"]["overall"]["model"]["si_sdr"])
    assert evaluation["overall"]["model"]["dnsmos_ovrl"] == pytest.approx(report["results"]["overall"]["model"]["dnsmos_ovrl"])
    assert set(evaluation["overall"]) == {"noisy", "model", "noisereduce", "rnnoise"}
    after = {p.key: p.value for p in onnx.load(str(model_path)).metadata_props}
    before = evaluated["before"]
    assert {k: v for k, v in after.items() if k != "evaluation"} == {k: v for k, v in before.items() if k != "evaluation"}
    assert content_sha256(model_path) == evaluated["before_content"]
    assert report["model"]["sha256_after_metadata"] == model.sha256
    # still a pass-through
    x = np.random.default_rng(0).standard_normal((8000, 1)).astype(np.float32) * 0.1
    np.testing.assert_allclose(model.denoise(x, 16000), x, atol=1e-4)


def test_pairs_directory_in_process(tmp_path, evaluated, monkeypatch):
    """A folder of noisy/clean pairs works too (no peers, no stats: seed MSE is absent; DNSMOS switched off)."""
    from training.evaluate import main
    from training.evaluation import dnsmos

    monkeypatch.setattr(dnsmos, "_state", dict(dnsmos._state))  # --no-dnsmos must not outlive this test

    src = evaluated["out"] / "examples"
    for role in ("noisy", "clean"):
        (tmp_path / "pairs" / role).mkdir(parents=True)
        for w in sorted(src.glob(f"*_{role}.wav")):
            (tmp_path / "pairs" / role / w.name.replace(f"_{role}", "")).write_bytes(w.read_bytes())
    assert main(["--data", str(tmp_path / "pairs"), "--model", str(evaluated["model"]), "--out", str(tmp_path / "o"),
                 "--peers", "none", "--no-dnsmos", "--quiet"]) == 0
    report = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report["data"]["kind"] == "pairs" and report["data"]["mixtures_evaluated"] >= 2
    assert report["results"]["overall"]["model"]["seed_mse"] is None
    assert report["dnsmos"] == {**report["dnsmos"], "available": False, "reason": "disabled by --no-dnsmos"}
    assert report["results"]["overall"]["model"]["dnsmos_ovrl"] is None
    assert "DNSMOS is unavailable in this run (disabled by --no-dnsmos)" in (tmp_path / "o" / "report.md").read_text()
    assert report["results"]["overall"]["model"]["si_sdr"] == pytest.approx(report["results"]["overall"]["noisy"]["si_sdr"], abs=0.01)


def evaluate_with_two_compared(tmp_path, evaluated, monkeypatch, names: tuple[str, str]) -> tuple[dict, list[Path]]:
    """The report of the evaluated model beside two constant-mask files (gains 0.5 and 0.25) named ``names``."""
    from training.evaluate import main
    from training.evaluation import dnsmos

    monkeypatch.setattr(dnsmos, "_state", dict(dnsmos._state))
    files = [make_constant_mask_model(tmp_path / f"{i}.onnx", gain=gain, name=name)
             for i, (gain, name) in enumerate(zip((0.5, 0.25), names))]
    assert main(["--data", str(evaluated["tmp"] / "data"), "--model", str(evaluated["model"]), "--out", str(tmp_path / "o"),
                 "--limit", "2", "--compare", str(files[0]), "--compare", str(files[1]), "--peers", "none", "--no-dnsmos",
                 "--examples", "0", "--quiet"]) == 0
    return json.loads((tmp_path / "o" / "report.json").read_text()), files


def test_compared_models_of_one_preset_keep_their_own_rows(tmp_path, evaluated, monkeypatch):
    """Two --compare models with the same preset are two systems in the report, each with its own scores."""
    report, _ = evaluate_with_two_compared(tmp_path, evaluated, monkeypatch, ("half", "quarter"))
    labels = {s["label"] for s in report["systems"].values()}
    assert {"half 0.0.0-test", "quarter 0.0.0-test"} <= labels and len(report["systems"]) == 4
    overall = report["results"]["overall"]
    names = [n for n, s in report["systems"].items() if s["kind"] == "peer"]
    assert len({overall[n]["seed_mse"] for n in names}) == 2  # a quieter output, a different level-dependent error


def test_a_compared_file_of_the_same_name_and_version_is_told_apart_by_its_hash(tmp_path, evaluated, monkeypatch):
    """Two files that carry the same model name and version get rows whose labels differ."""
    from denoise_core.model_file import OnnxModel

    report, files = evaluate_with_two_compared(tmp_path, evaluated, monkeypatch, ("twin", "twin"))
    labels = [s["label"] for s in report["systems"].values()]
    sha = OnnxModel(files[1], intra_op_threads=1).sha256
    assert "twin 0.0.0-test" in labels and f"twin 0.0.0-test (sha256 {sha[:12]})" in labels
    assert len(set(labels)) == len(labels) == 4
