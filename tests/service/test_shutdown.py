"""Graceful shutdown of the real server process: SIGTERM lets the request in flight finish."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.service.svc_helpers import decode, encode
from tests.service.test_service_load import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_sigterm_finishes_the_request_in_flight_then_exits(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "WARNING", "MAX_CONCURRENCY": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "service did not become ready"
            time.sleep(0.1)
        # two minutes of 44.1 kHz stereo: seconds of work, so SIGTERM lands while it runs
        rng = np.random.default_rng(0)
        audio = (0.1 * rng.standard_normal((120 * 44100, 2))).astype(np.float32)
        body = encode(audio, 44100)
        result: dict[str, httpx.Response] = {}

        def post() -> None:
            result["r"] = httpx.post(f"{base}/denoise", files={"file": ("long.wav", body, "audio/wav")}, timeout=120)

        worker = threading.Thread(target=post)
        worker.start()
        deadline = time.monotonic() + 60
        while "rainclean_denoise_active 1.0" not in httpx.get(f"{base}/metrics", timeout=5).text:
            assert time.monotonic() < deadline and worker.is_alive(), "the request never started"
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        worker.join(timeout=120)
        response = result["r"]
        assert response.status_code == 200, response.text
        out, sr, _ = decode(response.content)
        assert sr == 44100 and out.shape == audio.shape  # the whole answer, not cut off
        # uvicorn re-raises the signal once it has shut down, so the exit status is SIGTERM's
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
        assert b"Traceback" not in proc.stdout.read()
        with pytest.raises(httpx.TransportError):  # and it no longer listens
            httpx.get(f"{base}/ready", timeout=2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
