"""The offline CLI, settings from the environment, and the `python -m service` entry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from service import cli
from service.settings import DEFAULT_MODEL_PATH, Settings
from tests.service.svc_helpers import decode, encode, tone


def test_cli_denoises_files_into_output_dir(models, tmp_path, capsys):
    inputs = []
    for name, sr, ch, fmt in (("a.wav", 16000, 1, "WAV"), ("b.flac", 44100, 2, "FLAC")):
        path = tmp_path / "in" / name
        path.parent.mkdir(exist_ok=True)
        x = tone(400, sr, channels=ch)
        path.write_bytes(encode(x, sr, fmt, "PCM_16"))
        inputs.append((path, x, sr))
    bad = tmp_path / "in" / "c.wav"
    bad.write_bytes(b"not audio")
    out = tmp_path / "out"
    rc = cli.main([str(p) for p, _, _ in inputs] + [str(bad), "-o", str(out), "--model", str(models["half"])])
    assert rc == 1  # one input failed, the others were written
    assert "failed" in capsys.readouterr().err
    for path, x, sr in inputs:
        y, out_sr, info = decode((out / f"{path.stem}.wav").read_bytes())
        assert y.shape == x.shape and out_sr == sr and info.subtype == "PCM_16"
        edge = sr // 50
        np.testing.assert_allclose(y[edge:-edge], 0.5 * x[edge:-edge], atol=3e-3)
    assert cli.main([str(inputs[0][0]), "-o", str(out), "--model", str(models["half"]), "--overwrite"]) == 0


def test_settings_from_environment(monkeypatch):
    assert DEFAULT_MODEL_PATH.is_absolute() and DEFAULT_MODEL_PATH.parts[-2:] == ("models", "denoiser.onnx")
    s = Settings()
    assert s.port == 8000 and s.host == "0.0.0.0" and s.api_key is None
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("MAX_CONCURRENCY", "3")
    monkeypatch.setenv("API_KEY", "k")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("MODEL_PATH", "/somewhere/m.onnx")
    s = Settings()
    assert (s.port, s.max_concurrency, s.api_key.get_secret_value(), s.log_level) == (9123, 3, "k", "DEBUG")
    assert s.model_path == Path("/somewhere/m.onnx") and s.intra_op_threads >= 1
