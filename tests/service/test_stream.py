"""Streaming: the StreamingDenoiser equals the offline path in random chunk sizes, its reported delay is
the measured shift, and WS /stream over a real uvicorn server (equality, close codes, limits, auth)."""

from __future__ import annotations

import json
import threading
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn

from denoise_core.signal import SignalSpec, enhance_wave
from denoise_core.streaming import StreamingDenoiser, StreamingModel
from service.app import create_app
from service.stream_client import stream_audio
from tests.service.stream_helpers import delay_model_predict, export_band_stream, make_delay_stream_model, whole_file_predict
from tests.service.svc_helpers import settings_for
from tests.service.test_service_load import free_port

TOLERANCE = 1e-4


def speechy(n: int, seed: int = 0, channels: int = 1) -> np.ndarray:
    """Noise with a moving envelope and a tone: the mask moves over time."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    cols = [(0.1 * (0.5 + 0.5 * np.sin(2 * np.pi * (1.5 + c) * t)) * rng.standard_normal(n)
             + 0.1 * np.sin(2 * np.pi * (220 + 110 * c) * t)) for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


def stream_in_random_chunks(den: StreamingDenoiser, x: np.ndarray, seed: int, largest: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out, i = [], 0
    while i < x.shape[0]:
        n = int(rng.integers(1, largest))
        y = den.push(x[i : i + n])
        assert y.shape[0] == min(n, x.shape[0] - i)  # at the model's rate: as many out as in
        out.append(y)
        i += n
    out.append(den.flush())
    return np.concatenate(out)


@pytest.fixture(scope="module")
def delay_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("stream-models")
    return {"sigmoid": make_delay_stream_model(d / "sigmoid.onnx", lookahead=2, kind="sigmoid"),
            "ones": make_delay_stream_model(d / "ones.onnx", lookahead=3, kind="ones")}


# ------------------------------------------------------------------ unit: no server, no TensorFlow
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("n", [16000 * 3 + 77, 4096, 100])
def test_random_chunks_equal_offline(delay_models, channels: int, n: int) -> None:
    model = StreamingModel(delay_models["sigmoid"])
    x = speechy(n, seed=n, channels=channels)
    den = StreamingDenoiser(model, 16000, channels)
    assert den.delay == 512 + 2 * 256 and den.latency_ms == pytest.approx(64.0)
    got = stream_in_random_chunks(den, x, seed=channels)
    assert got.shape == (n + den.delay, channels)
    for c in range(channels):
        want = enhance_wave(x[:, c], model.spec, delay_model_predict("sigmoid"))
        np.testing.assert_allclose(got[den.delay :, c], want, rtol=0, atol=TOLERANCE)
    assert np.all(got[: den.delay] == 0.0)


@pytest.mark.parametrize("channels", [1, 2])
def test_whole_file_denoise_is_the_offline_output_realigned(delay_models, channels: int) -> None:
    """StreamingModel.denoise (what the evaluation scores) streams a file and removes the delay."""
    model = StreamingModel(delay_models["sigmoid"])
    x = speechy(16000 * 2 + 555, seed=5, channels=channels)
    got = model.denoise(x, 16000)
    assert got.shape == x.shape
    for c in range(channels):
        want = enhance_wave(x[:, c], model.spec, delay_model_predict("sigmoid"))
        np.testing.assert_allclose(got[:, c], want, rtol=0, atol=TOLERANCE)


def test_a_streaming_file_that_says_channels_first_is_refused(tmp_path: Path) -> None:
    """Stream blocks are channels-last; a file whose contract says otherwise is not run wrongly."""
    spec = SignalSpec(output="mask", lookahead_frames=2, layout="channels_first")
    with pytest.raises(ValueError, match="channels-last"):
        StreamingModel(make_delay_stream_model(tmp_path / "first.onnx", spec=spec))


@pytest.mark.parametrize("rate", [16000, 8000, 22050, 48000])
def test_reported_latency_is_the_measured_shift(delay_models, rate: int) -> None:
    """A pass-through streaming model with 3 lookahead frames: an impulse comes out `delay` samples later."""
    model = StreamingModel(delay_models["ones"])
    n = rate
    x = np.zeros((n, 2), np.float32)
    x[n // 3, 0], x[n // 2, 1] = 0.5, -0.5
    den = StreamingDenoiser(model, rate, 2)
    if rate == 16000:
        assert den.delay == model.delay_samples == 512 + 3 * 256
    rng = np.random.default_rng(rate)
    out, i = [], 0
    while i < n:
        k = int(rng.integers(1, rate // 25))
        y = den.push(x[i : i + k])
        assert y.shape[0] == min(k, n - i)  # no underrun: the delay covers the resamplers' buffering
        out.append(y)
        i += k
    out.append(den.flush())
    y = np.concatenate(out)
    assert y.shape[0] == n + den.delay
    assert int(np.argmax(np.abs(y[:, 0]))) == n // 3 + den.delay
    assert int(np.argmax(np.abs(y[:, 1]))) == n // 2 + den.delay
    if rate == 16000:
        np.testing.assert_allclose(y[den.delay :], x, rtol=0, atol=1e-6)  # the STFT round trip is exact


# ------------------------------------------------------------------ the band network's streaming export
@pytest.fixture(scope="module")
def band_stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("tensorflow")
    return export_band_stream(tmp_path_factory.mktemp("band-stream"), lookahead=2, complex_mask=True)


@pytest.mark.training
@pytest.mark.e2e
def test_band_stream_in_random_chunks_equals_offline(band_stream: Path) -> None:
    model = StreamingModel(band_stream)
    x = speechy(16000 * 2 + 333, seed=7)
    want = enhance_wave(x[:, 0], model.spec, whole_file_predict(model))
    assert np.abs(want - x[:, 0]).max() > 1e-2  # the model really changes the audio
    den = StreamingDenoiser(model)
    assert den.delay == 512 + 2 * 256
    got = stream_in_random_chunks(den, x, seed=8, largest=1500)
    np.testing.assert_allclose(got[den.delay :, 0], want, rtol=0, atol=TOLERANCE)


@pytest.mark.training
@pytest.mark.e2e
@pytest.mark.parametrize("lookahead", [2, 0])
def test_a_deep_filter_band_stream_equals_offline(tmp_path: Path, lookahead: int) -> None:
    """The deep filter's taps read two noisy frames ahead: with a network lookahead of 0 the
    stream waits for them, so the delay is two frames either way."""
    pytest.importorskip("tensorflow")
    model = StreamingModel(export_band_stream(tmp_path, lookahead=lookahead, complex_mask=True, df_bins=65))
    assert model.network_delay == lookahead and model.lookahead == 2
    x = speechy(16000 + 999, seed=11)
    want = enhance_wave(x[:, 0], model.spec, whole_file_predict(model))
    assert np.abs(want - x[:, 0]).max() > 1e-2
    den = StreamingDenoiser(model)
    assert den.delay == 512 + 2 * 256 and model.describe()["algorithmic_latency_ms"] == pytest.approx(64.0)
    got = stream_in_random_chunks(den, x, seed=12, largest=1200)
    np.testing.assert_allclose(got[den.delay :, 0], want, rtol=0, atol=TOLERANCE)


SHIPPED_STREAM_MODEL = Path(__file__).resolve().parents[2] / "models" / "denoiser-stream.onnx"


def test_the_shipped_streaming_model_streams_like_its_offline_form() -> None:
    """The shipped file, fed in random chunk sizes, equals its whole-file output; latency <= 64 ms."""
    model = StreamingModel(SHIPPED_STREAM_MODEL)
    assert model.latency_ms <= 64.0
    x = speechy(16000 * 3 + 123, seed=21)
    want = enhance_wave(x[:, 0], model.spec, whole_file_predict(model))
    assert np.abs(want - x[:, 0]).max() > 1e-2
    den = StreamingDenoiser(model)
    got = stream_in_random_chunks(den, x, seed=22, largest=1500)
    np.testing.assert_allclose(got[den.delay :, 0], want, rtol=0, atol=TOLERANCE)


# ------------------------------------------------------------------ over a real server
@contextmanager
def server(engine_model: Path, stream_model: Path | None, **overrides: object):
    settings = settings_for(engine_model, stream_model_path=stream_model or Path("/nonexistent/stream.onnx"), **overrides)
    app = create_app(settings, configure_logging=False)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not srv.started or app.state.streams.state == "loading" or not app.state.engine.ready:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        yield app, base, base.replace("http://", "ws://") + "/stream"
    finally:
        srv.should_exit = True
        thread.join(timeout=30)


def closed_with(ws) -> tuple[int, str]:
    from websockets.exceptions import ConnectionClosed

    with pytest.raises(ConnectionClosed) as info:
        for _ in range(100):
            ws.recv(timeout=20)
    return info.value.rcvd.code, info.value.rcvd.reason


def start(ws, **header: object) -> dict:
    ws.send(json.dumps({"type": "start", "sample_rate": 16000, "channels": 1, "format": "f32", **header}))
    return json.loads(ws.recv(timeout=20))


def gauge(base: str, name: str, headers: dict[str, str] | None = None) -> float:
    text = httpx.get(base + "/metrics", headers=headers).text
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")))


@pytest.mark.training
@pytest.mark.e2e
def test_band_stream_over_websocket_equals_offline(models, band_stream: Path) -> None:
    model = StreamingModel(band_stream)
    x = speechy(16000 * 2 + 101, seed=11)
    want = enhance_wave(x[:, 0], model.spec, whole_file_predict(model))
    sizes = np.random.default_rng(12).integers(1, 2000, 200).tolist()
    with server(models["passthrough"], band_stream) as (app, base, url):
        info = httpx.get(base + "/model-info").json()["streaming"]
        assert info["available"] and info["algorithmic_latency_ms"] == pytest.approx(64.0)
        got = stream_audio(x, 16000, url, "f32", chunk_sizes=sizes)
        assert got.ready["latency_samples"] == 1024 and got.ready["latency_ms"] == pytest.approx(64.0)
        np.testing.assert_allclose(got.audio[:, 0], want, rtol=0, atol=TOLERANCE)
        # pcm16: the offline output of the 16-bit input, within the output's rounding
        q = np.round(x * 32768) / 32768
        want16 = enhance_wave(q[:, 0], model.spec, whole_file_predict(model))
        got16 = stream_audio(q, 16000, url, "pcm16", chunk_sizes=sizes)
        np.testing.assert_allclose(got16.audio[:, 0], want16, rtol=0, atol=0.5 / 32768 + TOLERANCE)
        assert gauge(base, "rainclean_streams_active") == 0
        assert gauge(base, "rainclean_stream_audio_seconds_total") == pytest.approx(2 * x.shape[0] / 16000)


@pytest.mark.e2e
def test_stream_protocol_limits_and_errors(models, delay_models) -> None:
    from websockets.sync.client import connect

    x = speechy(16000, seed=3)
    with server(models["passthrough"], delay_models["sigmoid"], max_streams=2, stream_idle_timeout=1.0) as (app, base, url):
        # random frame sizes through the reference client equal the offline output, stereo at 16 kHz
        stereo = speechy(12000, seed=4, channels=2)
        sizes = np.random.default_rng(5).integers(1, 900, 100).tolist()
        got = stream_audio(stereo, 16000, url, "f32", chunk_sizes=sizes)
        for c in range(2):
            want = enhance_wave(stereo[:, c], StreamingModel(delay_models["sigmoid"]).spec, delay_model_predict())
            np.testing.assert_allclose(got.audio[:, c], want, rtol=0, atol=TOLERANCE)

        # every binary frame gets one binary frame back; a flush ends the utterance, then the stream starts afresh
        with connect(url) as ws:
            ready = start(ws)
            assert ready["type"] == "ready" and ready["latency_samples"] == 1024 and ready["model"]["name"] == "delay-stream"
            ws.send(x[:500, 0].astype("<f4").tobytes())
            assert len(ws.recv(timeout=20)) == 500 * 4
            ws.send(json.dumps({"type": "flush"}))
            assert len(ws.recv(timeout=20)) == 1024 * 4
            assert json.loads(ws.recv(timeout=20)) == {"type": "flushed", "samples_in": 500, "samples_out": 1524}

        # a disconnect mid-stream frees the state
        with connect(url) as ws:
            start(ws)
            ws.send(x[:3000, 0].astype("<f4").tobytes())
            ws.recv(timeout=20)
            assert gauge(base, "rainclean_streams_active") == 1
        deadline = time.monotonic() + 10
        while gauge(base, "rainclean_streams_active") != 0:
            assert time.monotonic() < deadline, "the state of a closed stream was not freed"
            time.sleep(0.05)

        # malformed headers and frames
        for header, code in [("not json", 1007), (json.dumps({"type": "start", "sample_rate": 96000}), 1007),
                             (json.dumps({"type": "start", "sample_rate": 16000, "channels": 3}), 1007),
                             (json.dumps({"type": "start", "sample_rate": 16000, "format": "mp3"}), 1007)]:
            with connect(url) as ws:
                ws.send(header)
                got_code, reason = closed_with(ws)
                assert got_code == code and reason, (header, got_code, reason)
        with connect(url) as ws:
            start(ws)
            ws.send(b"\x00" * 7)  # not a whole number of float32 samples
            code, reason = closed_with(ws)
            assert code == 1007 and "whole number" in reason
        with connect(url) as ws:
            start(ws, format="pcm16", channels=2)
            ws.send(b"\x00" * 6)  # 1.5 stereo pcm16 samples
            assert closed_with(ws)[0] == 1007
        with connect(url) as ws:
            start(ws)
            ws.send(json.dumps({"type": "dance"}))
            assert closed_with(ws)[0] == 1003

        # MAX_STREAMS (2) + 1 gets 1013
        with ExitStack() as stack:
            for _ in range(2):
                assert start(stack.enter_context(connect(url)))["type"] == "ready"
            with connect(url) as c:
                code, reason = closed_with(c)
                assert code == 1013 and "MAX_STREAMS" in reason

        # an idle stream times out (1 s here)
        with connect(url) as ws:
            start(ws)
            t0 = time.monotonic()
            code, reason = closed_with(ws)
            assert code == 1001 and "idle" in reason and 0.8 < time.monotonic() - t0 < 10
        assert gauge(base, "rainclean_streams_active") == 0
        text = httpx.get(base + "/metrics").text
        assert "rainclean_stream_block_processing_seconds_count" in text


@pytest.mark.e2e
def test_concurrent_streams_share_model_calls_and_each_equals_its_offline_output(models) -> None:
    """Eight streams at once through the shipped streaming model: every stream gets its own
    offline output, and the model calls are counted in the batch-rows histogram."""
    from concurrent.futures import ThreadPoolExecutor

    model = StreamingModel(SHIPPED_STREAM_MODEL)
    inputs = [speechy(16000 + 500 * k, seed=30 + k) for k in range(8)]
    wants = [enhance_wave(x[:, 0], model.spec, whole_file_predict(model)) for x in inputs]
    with server(models["passthrough"], SHIPPED_STREAM_MODEL, max_streams=8) as (app, base, url):
        with ThreadPoolExecutor(8) as pool:
            gots = list(pool.map(lambda x: stream_audio(x, 16000, url, "f32", chunk_ms=20), inputs))
        for got, want in zip(gots, wants):
            np.testing.assert_allclose(got.audio[:, 0], want, rtol=0, atol=TOLERANCE)
        calls = gauge(base, "rainclean_stream_batch_rows_count")
        rows = gauge(base, "rainclean_stream_batch_rows_sum")
        assert calls > 0 and rows >= calls
        assert httpx.get(base + "/model-info").json()["streaming"]["max_batch_rows"] == 32


@pytest.mark.e2e
def test_stream_api_key(models, delay_models) -> None:
    from websockets.sync.client import connect

    with server(models["passthrough"], delay_models["sigmoid"], api_key="s3cret") as (app, base, url):
        with connect(url) as ws:
            ws.send(json.dumps({"type": "start", "sample_rate": 16000, "channels": 1, "format": "f32"}))
            code, reason = closed_with(ws)
            assert code == 1008 and "API key" in reason
        with connect(url) as ws:
            ws.send(json.dumps({"type": "start", "sample_rate": 16000, "format": "f32", "token": "wrong"}))
            assert closed_with(ws)[0] == 1008
        with connect(url) as ws:  # token in the first message
            assert start(ws, token="s3cret")["type"] == "ready"
        with connect(url, additional_headers={"Authorization": "Bearer s3cret"}) as ws:  # or in the handshake
            assert start(ws)["type"] == "ready"
        got = stream_audio(speechy(4000, seed=1), 16000, url, "pcm16", token="s3cret")
        assert got.audio.shape == (4000, 1)


@pytest.mark.e2e
def test_without_a_streaming_model_the_service_still_denoises(models) -> None:
    from websockets.sync.client import connect

    from tests.service.svc_helpers import encode, tone

    with server(models["passthrough"], None) as (app, base, url):
        info = httpx.get(base + "/model-info").json()
        assert info["streaming"]["available"] is False and "no streaming model" in info["streaming"]["reason"]
        r = httpx.post(base + "/denoise", files={"file": ("t.wav", encode(tone(440, 16000), 16000), "audio/wav")})
        assert r.status_code == 200
        with connect(url) as ws:
            code, reason = closed_with(ws)
            assert code == 1011 and "streaming is unavailable" in reason
