"""The real app (FastAPI TestClient, lifespan included) on tiny ONNX models."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from service.logging_setup import JsonFormatter
from tests.service.svc_helpers import decode, encode, rms, running_app, tone


def post(client, data: bytes, name: str = "in.wav", ctype: str | None = "audio/wav", **kw):
    file = (name, data, ctype) if ctype else (name, data)
    return client.post("/denoise", files={"file": file}, **kw)


def assert_error(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    if code:
        assert body["error"]["code"] == code, body
    assert r.headers.get("x-request-id")
    return body["error"]


# ------------------------------------------------------------------ operations endpoints
def test_health_ready_model_info_metrics_docs(client):
    assert client.get("/health").json()["status"] == "ok"
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json()["model_version"] == "0.0.0-test"
    info = client.get("/model-info").json()
    assert info["name"] == "passthrough" and len(info["sha256"]) == 64
    assert info["sample_rate"] == 16000 and info["stft"]["n_fft"] == 512 and info["stft"]["hop_length"] == 256
    assert info["normalisation"] == {"norm_min": 0.0, "norm_max": 1.0} and info["frame_multiple"] == 4
    assert info["inputs"][0]["name"] == "features" and info["outputs"][0]["name"] == "output"
    assert info["inputs"][0]["shape"][1] == 257
    assert info["onnxruntime"]["version"] and info["onnxruntime"]["intra_op_threads"] == 1
    assert info["data_summary"] == {"speakers": {"train": 1}} and info["evaluation"] == {}
    post(client, encode(tone(440, 16000), 16000))
    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    for name in ("rainclean_http_requests_total", "rainclean_http_errors_total", "rainclean_http_request_duration_seconds",
                 "rainclean_audio_seconds_processed_total", "rainclean_http_requests_in_flight", "rainclean_model_ready 1.0"):
        assert name in metrics.text
    assert client.get("/docs").status_code == 200
    assert "/denoise" in client.get("/openapi.json").json()["paths"]


def test_request_id_echoed_or_generated_and_no_audio_in_logs(client, caplog):
    caplog.set_level(logging.INFO, logger="service.access")
    r = post(client, encode(tone(440, 16000), 16000), headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    assert float(r.headers["x-processing-time"]) > 0 and r.headers["x-model-version"] == "0.0.0-test"
    generated = client.get("/health", headers={"X-Request-ID": "bad id\nwith newline"}).headers["x-request-id"]
    assert len(generated) == 32 and "\n" not in generated
    records = [rec for rec in caplog.records if getattr(rec, "request_id", None) == "abc-123"]
    assert records
    line = json.loads(JsonFormatter().format(records[-1]))  # one JSON object per line, as on stderr
    assert line["request_id"] == "abc-123" and line["path"] == "/denoise" and line["status"] == 200
    assert line["sample_rate"] == 16000 and line["audio_seconds"] == 1.0
    assert all(len(JsonFormatter().format(rec)) < 1000 for rec in caplog.records)  # no audio payloads


# ------------------------------------------------------------------ formats, rates, channels
@pytest.mark.parametrize(("fmt", "subtype", "expected"), [
    ("WAV", "PCM_16", "PCM_16"), ("WAV", "PCM_24", "PCM_24"), ("WAV", "FLOAT", "FLOAT"),
    ("FLAC", "PCM_16", "PCM_16"), ("OGG", "VORBIS", "PCM_16"),
])
def test_formats_round_trip(client, fmt, subtype, expected):
    x = tone(440, 16000)
    r = post(client, encode(x, 16000, fmt, subtype), name=f"in.{fmt.lower()}", ctype=None)
    assert r.status_code == 200, r.text
    y, sr, info = decode(r.content)
    assert (y.shape, sr, info.format, info.subtype) == (x.shape, 16000, "WAV", expected)
    assert r.headers["content-type"] == "audio/wav"
    interior = slice(800, -800)
    tol = 0.05 if fmt == "OGG" else 2e-3
    assert np.max(np.abs(y[interior] - x[interior])) < tol


@pytest.mark.parametrize("sr", [8000, 16000, 44100, 48000])
@pytest.mark.parametrize("channels", [1, 2])
def test_rates_and_channels_keep_shape_and_level(client, sr, channels):
    """Pass-through model: tones below 4 kHz come back unchanged away from the edges.

    Documented edge effect: at rates other than the model's, the resampler's filters
    ring over the first/last few milliseconds; the interior matches to ~1e-3.
    """
    x = tone(500, sr, seconds=1.0, channels=channels)
    r = post(client, encode(x, sr, "WAV", "PCM_16"))
    assert r.status_code == 200, r.text
    y, out_sr, _ = decode(r.content)
    assert y.shape == x.shape and out_sr == sr
    edge = int(0.01 * sr)
    assert np.max(np.abs(y[edge:-edge] - x[edge:-edge])) < 2e-3
    assert rms(y) == pytest.approx(rms(x), rel=0.01)


def test_flac_output_and_filename(client):
    x = tone(300, 16000, channels=2)
    r = client.post("/denoise?format=flac", files={"file": ("my talk.wav", encode(x, 16000), "audio/x-wav")})
    assert r.status_code == 200 and r.headers["content-type"] == "audio/flac"
    assert 'filename="my_talk-denoised.flac"' in r.headers["content-disposition"]
    y, sr, info = decode(r.content)
    assert info.format == "FLAC" and y.shape == x.shape and sr == 16000


def test_clipping_never_wraps(client):
    x = np.full((16000, 1), 0.999, dtype=np.float32) * np.sign(tone(200, 16000, amp=1.0))
    r = post(client, encode(x, 16000, "WAV", "FLOAT"))
    y, _, _ = decode(r.content)
    assert np.max(np.abs(y)) <= 1.0 and np.all(np.sign(y[2000:-2000]) == np.sign(x[2000:-2000]))


# ------------------------------------------------------------------ the model is really applied
def test_half_gain_model_halves_level(models):
    x = tone(1000, 44100, channels=2)
    with running_app(models["half"]) as c:
        r = post(c, encode(x, 44100, "WAV", "FLOAT"))
        assert r.headers["x-model-version"] == "0.0.0-test"
        y, _, _ = decode(r.content)
    edge = 441
    np.testing.assert_allclose(y[edge:-edge], 0.5 * x[edge:-edge], atol=2e-3)


def test_long_file_in_chunks_matches_one_pass(models):
    rng = np.random.default_rng(1)
    x = (tone(700, 16000, seconds=7.0) + 0.05 * rng.standard_normal((7 * 16000, 1))).astype(np.float32)
    data = encode(x, 16000, "WAV", "FLOAT")
    with running_app(models["sigmoid"], chunk_seconds=2.0, chunk_overlap_seconds=0.5) as c:
        chunked, _, _ = decode(post(c, data).content)
    with running_app(models["sigmoid"], chunk_seconds=30.0) as c:
        one_pass, _, _ = decode(post(c, data).content)
    assert chunked.shape == one_pass.shape == x.shape
    assert rms(one_pass - x) > 0.5 * 0.05  # the input-dependent mask really removed noise
    # chunk steps sit on the STFT hop grid (denoise_core.signal.enhance_long): only the
    # cross-faded chunk edges can differ, and here they match to ~1e-5
    assert rms(chunked - one_pass) < 1e-3 * rms(one_pass)


# ------------------------------------------------------------------ bad input: 400 / 413 / 415 / 422 / 404 / 405
def test_undecodable_inputs_are_400(client):
    good = encode(tone(440, 16000), 16000)
    nan = tone(440, 16000)
    nan[100:110] = np.nan
    cases = {
        "empty": b"",
        "random": np.random.default_rng(0).bytes(4096),
        "truncated header": good[:30],
        "nan samples": encode(nan, 16000, "WAV", "FLOAT"),
        "inf samples": encode(np.where(np.isnan(nan), np.inf, nan).astype(np.float32), 16000, "WAV", "FLOAT"),
    }
    for label, data in cases.items():
        err = assert_error(post(client, data), 400, "invalid_audio")
        assert "0x" not in err["message"], (label, err)


def test_unsupported_sample_rate_is_400(client):
    assert_error(post(client, encode(tone(100, 4000), 4000)), 400, "invalid_audio")


def test_media_types(client):
    data = encode(tone(440, 16000), 16000)
    assert_error(post(client, data, ctype="application/json"), 415, "unsupported_media_type")
    assert_error(post(client, data, ctype="text/plain"), 415, "unsupported_media_type")
    assert post(client, data, ctype="application/octet-stream").status_code == 200
    assert_error(client.post("/denoise", content=data, headers={"Content-Type": "audio/wav"}), 415)
    assert_error(client.post("/denoise", json={"file": "x"}), 415)


def test_validation_and_routing_errors(client):
    assert "file" in assert_error(client.post("/denoise", files={"other": ("a.wav", b"x")}), 422, "validation_error")["message"]
    assert_error(client.post("/denoise"), 422, "validation_error")
    assert_error(client.post("/denoise?format=mp3", files={"file": ("a.wav", encode(tone(440, 16000), 16000))}), 422)
    assert_error(client.get("/no-such-endpoint"), 404, "not_found")
    assert_error(client.get("/denoise"), 405, "method_not_allowed")


def test_oversize_upload_is_413(client):  # the client fixture allows 1 MiB
    big = encode(np.zeros((600_000, 1), np.float32), 16000, "WAV", "PCM_16")  # 1.2 MB, declared length
    assert_error(post(client, big), 413, "payload_too_large")
    slightly = encode(np.zeros((530_000, 1), np.float32), 16000, "WAV", "PCM_16")  # within multipart slack
    assert_error(post(client, slightly), 413, "payload_too_large")
    boundary = "XyZ"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode() + big + f"\r\n--{boundary}--\r\n".encode()

    def stream():  # no Content-Length: the limit is enforced while the bytes arrive
        for i in range(0, len(body), 65536):
            yield body[i:i + 65536]

    r = client.post("/denoise", content=stream(), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert_error(r, 413, "payload_too_large")


def test_overlong_audio_is_413_from_the_header(client):  # the client fixture allows 20 s
    silence = encode(np.zeros((16000 * 60, 1), np.float32), 16000, "FLAC", "PCM_16")
    assert len(silence) < 100_000  # tiny upload, an hour-long expansion refused before decoding
    assert "60.0 s" in assert_error(post(client, silence, name="s.flac", ctype="audio/flac"), 413, "payload_too_large")["message"]


# ------------------------------------------------------------------ auth and readiness
def test_api_key(models):
    with running_app(models["passthrough"], api_key="s3cret", headers={"Authorization": "Bearer s3cret"}) as c:
        assert c.get("/health").status_code == 200
        for path in ("/ready", "/model-info", "/metrics", "/docs"):
            assert_error(c.get(path), 401, "unauthorized")
            assert_error(c.get(path, headers={"Authorization": "Bearer wrong"}), 401)
            assert c.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        data = encode(tone(440, 16000), 16000)
        assert_error(post(c, data), 401)
        assert post(c, data, headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_missing_or_invalid_model_is_not_ready_but_alive(models, tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    for path, reason in ((tmp_path / "missing.onnx", "not found"), (garbage, "")):
        with running_app(path, wait=False) as c:
            assert c.get("/health").status_code == 200
            for _ in range(500):
                r = c.get("/ready")
                if r.json()["error"]["code"] != "not_ready":
                    break
            err = assert_error(r, 503, "model_unavailable")
            assert reason in err["message"] and int(r.headers["retry-after"]) > 0
            assert c.get("/health").json()["model_state"] == "failed"
            assert_error(post(c, encode(tone(440, 16000), 16000)), 503, "model_unavailable")
            assert_error(c.get("/model-info"), 503)
            assert "rainclean_model_ready 0.0" in c.get("/metrics").text


def test_unexpected_failure_is_json_500_with_request_id(models):
    with running_app(models["passthrough"]) as c:
        def broken(batch):
            raise RuntimeError("boom: internal detail")

        c.app.state.engine.model.predict = broken
        r = post(c, encode(tone(440, 16000), 16000), headers={"X-Request-ID": "r-500"})
        err = assert_error(r, 500, "internal_error")
        assert "boom" not in err["message"] and r.headers["x-request-id"] == "r-500"
        assert c.get("/ready").status_code == 200  # one failed request does not take the service down
