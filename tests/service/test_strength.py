"""The strength control: ``POST /denoise?attenuation_limit_db=X`` and ``--attenuation-limit-db X``."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient

from denoise_core.model_file import OnnxModel
from service import cli
from service.inference import denoise_bytes
from tests.onnx_fixtures import make_constant_mask_model
from tests.service.svc_helpers import SPEC, decode, encode, running_app, settings_for

LSB = 1.0 / 32768  # one step of 16-bit PCM


def noisy(sr: int = 16000, channels: int = 1, seconds: float = 1.0) -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(int(sr * seconds)) / sr
    speechy = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    cols = [speechy + rng.normal(0, 0.05, t.shape) for _ in range(channels)]
    return np.clip(np.stack(cols, axis=1), -1, 1).astype(np.float32)


@pytest.fixture(scope="module")
def silencer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fake model that removes everything (its mask is zero)."""
    return make_constant_mask_model(tmp_path_factory.mktemp("silencer") / "zero.onnx", SPEC, gain=0.0, name="zero")


@pytest.fixture(scope="module")
def sigmoid_client(models: dict[str, Path]) -> Iterator[TestClient]:
    with running_app(models["sigmoid"]) as c:
        yield c


@pytest.fixture(scope="module")
def silencer_client(silencer: Path) -> Iterator[TestClient]:
    with running_app(silencer) as c:
        yield c


def post(client: TestClient, data: bytes, **params: object):
    return client.post("/denoise", files={"file": ("x.wav", data, "audio/wav")}, params=params)


def test_no_limit_is_the_current_output_byte_for_byte(sigmoid_client: TestClient, models: dict[str, Path]) -> None:
    data = encode(noisy(44100, 2), 44100)
    reference = denoise_bytes(OnnxModel(models["sigmoid"]), data, settings_for(models["sigmoid"])).payload
    r = post(sigmoid_client, data)
    assert r.status_code == 200 and r.content == reference
    limited = post(sigmoid_client, data, attenuation_limit_db=10)
    assert limited.status_code == 200 and limited.content != reference


@pytest.mark.parametrize("sr,channels", [(16000, 1), (44100, 2)])
def test_zero_db_returns_the_input(sigmoid_client: TestClient, sr: int, channels: int) -> None:
    x = noisy(sr, channels)
    r = post(sigmoid_client, encode(x, sr), attenuation_limit_db=0)
    assert r.status_code == 200
    y, out_sr, _ = decode(r.content)
    sent, _, _ = decode(encode(x, sr))
    assert out_sr == sr and y.shape == x.shape
    np.testing.assert_array_equal(y, sent)  # PCM_16 in, PCM_16 out: exactly the samples sent


@pytest.mark.parametrize("db", [6, 12, 20])
def test_a_model_that_removes_everything_keeps_the_input_x_db_down(silencer_client: TestClient, db: int) -> None:
    x, _, _ = decode(encode(noisy(22050, 2), 22050))
    r = post(silencer_client, encode(x, 22050), attenuation_limit_db=db)
    assert r.status_code == 200
    y, _, _ = decode(r.content)
    np.testing.assert_allclose(y, x * 10 ** (-db / 20), atol=LSB, rtol=0)
    full = post(silencer_client, encode(x, 22050))
    assert np.all(decode(full.content)[0] == 0)  # without a limit the silencer removes everything


def test_fractional_limits_are_accepted(silencer_client: TestClient) -> None:
    x, _, _ = decode(encode(noisy(), 16000))
    y, _, _ = decode(post(silencer_client, encode(x, 16000), attenuation_limit_db="3.5").content)
    np.testing.assert_allclose(y, x * 10 ** (-3.5 / 20), atol=LSB, rtol=0)


@pytest.mark.parametrize("bad", ["-1", "abc", "nan", "-0.5"])
def test_invalid_limits_get_422_with_the_error_schema(sigmoid_client: TestClient, bad: str) -> None:
    r = post(sigmoid_client, encode(noisy(), 16000), attenuation_limit_db=bad)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "validation_error" and "attenuation_limit_db" in error["message"]


def test_openapi_documents_the_parameter(sigmoid_client: TestClient) -> None:
    params = sigmoid_client.get("/openapi.json").json()["paths"]["/denoise"]["post"]["parameters"]
    (param,) = [p for p in params if p["name"] == "attenuation_limit_db"]
    assert param["in"] == "query" and not param.get("required", False)
    assert "dB" in param["description"] and "10^(-X/20)" in param["description"]
    number = [s for s in param["schema"].get("anyOf", [param["schema"]]) if s.get("type") == "number"]
    assert number and number[0]["minimum"] == 0


def test_cli_option(silencer: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x, _, _ = decode(encode(noisy(), 16000))
    src = tmp_path / "in.wav"
    src.write_bytes(encode(x, 16000))
    assert cli.main([str(src), "-o", str(tmp_path / "out"), "--model", str(silencer),
                     "--attenuation-limit-db", "12"]) == 0
    y, _, _ = decode((tmp_path / "out" / "in.wav").read_bytes())
    np.testing.assert_allclose(y, x * 10 ** (-12 / 20), atol=LSB, rtol=0)
    for bad in ("-1", "abc"):
        with pytest.raises(SystemExit) as exc:
            cli.main([str(src), "-o", str(tmp_path / "out"), "--attenuation-limit-db", bad])
        assert exc.value.code == 2
    assert "attenuation-limit-db" in capsys.readouterr().err
