"""Real uvicorn on 127.0.0.1: a burst beyond capacity gets quick 503s, the rest their own audio."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
import uvicorn

from service.app import create_app
from service.errors import ServiceError
from service.inference import CapacityLimiter
from tests.service.svc_helpers import decode, encode, settings_for, tone

pytestmark = pytest.mark.e2e
SLOW = 1.0  # seconds each accepted request holds its slot


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dominant_freq(x: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(x[:, 0] * np.hanning(len(x))))
    return float(np.argmax(spectrum) * sr / len(x))


def test_burst_beyond_capacity_over_real_uvicorn(models):
    app = create_app(settings_for(models["passthrough"], max_concurrency=2, max_queue=0, queue_timeout=0),
                     configure_logging=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if c.get("/ready").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert c.get("/health").json()["status"] == "ok"

        # a slow model: the real network, with a delay in each call, so requests overlap
        model = app.state.engine.model
        fast_predict = model.predict

        def slow_predict(batch):
            time.sleep(SLOW)
            return fast_predict(batch)

        model.predict = slow_predict
        n = 6
        freqs = [300.0 + 150.0 * i for i in range(n)]
        bodies = [encode(tone(f, 16000, seconds=1.0), 16000) for f in freqs]

        def call(i: int):
            t0 = time.perf_counter()
            with httpx.Client(base_url=base, timeout=30) as c:
                r = c.post("/denoise", files={"file": (f"t{i}.wav", bodies[i], "audio/wav")},
                           headers={"X-Request-ID": f"burst-{i}"})
            return i, r, time.perf_counter() - t0

        with ThreadPoolExecutor(n) as pool:
            results = list(pool.map(call, range(n)))
        ok = [(i, r) for i, r, _ in results if r.status_code == 200]
        busy = [(i, r, dt) for i, r, dt in results if r.status_code == 503]
        assert len(ok) + len(busy) == n, [r.status_code for _, r, _ in results]
        assert 1 <= len(ok) <= 2 and len(busy) >= n - 2
        for i, r, dt in busy:
            assert r.json()["error"]["code"] == "over_capacity" and r.headers["retry-after"] == "1"
            assert dt < SLOW, f"refusal took {dt:.2f} s: it queued"
        for i, r in ok:  # each response is its own request's audio
            assert r.headers["x-request-id"] == f"burst-{i}"
            y, sr, _ = decode(r.content)
            assert y.shape == (16000, 1) and abs(dominant_freq(y, sr) - freqs[i]) < 5
        model.predict = fast_predict
        with httpx.Client(base_url=base, timeout=30) as c:  # capacity is released afterwards
            assert c.post("/denoise", files={"file": ("a.wav", bodies[0], "audio/wav")}).status_code == 200
            text = c.get("/metrics").text
            assert 'rainclean_http_errors_total{code="over_capacity",status="503"}' in text
            assert "rainclean_denoise_active 0.0" in text
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_limiter_queues_within_bounds_then_refuses():
    async def scenario() -> list[str]:
        limiter = CapacityLimiter(max_concurrency=1, max_queue=1, queue_timeout=0.3)
        events: list[str] = []

        async def job(name: str, hold: float) -> None:
            try:
                async with limiter.slot():
                    events.append(f"{name} start")
                    await asyncio.sleep(hold)
            except ServiceError as exc:
                events.append(f"{name} {exc.status_code}")

        # a runs; b waits (queue 1) and gets the slot in time; c finds the queue full
        await asyncio.gather(job("a", 0.1), job("b", 0.0), job("c", 0.0))
        # d holds the slot longer than e may wait: e times out
        await asyncio.gather(job("d", 0.5), job("e", 0.0))
        assert limiter.active == 0 and limiter.waiting == 0
        return events

    events = asyncio.run(scenario())
    assert events == ["a start", "c 503", "b start", "d start", "e 503"], events
