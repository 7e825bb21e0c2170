"""Screenshot of the try-it page with a result on it (``docs/page.png`` in the README).

    python -m service.screenshot --out docs/page.png

Starts the service (uvicorn on 127.0.0.1, a free port, the shipped model), mixes a
LibriSpeech utterance with an ESC-50 rain clip, loads ``/`` in headless Chromium
(Debian's ``chromium`` driven by Playwright's Python package; no browser is
downloaded), denoises the mixture through the page and saves a screenshot.

The helpers here (:func:`serve`, :func:`launch_chromium`, :func:`make_noisy_mixture`)
are also used by the page's browser test, ``tests/service/test_page_browser.py``.
"""

from __future__ import annotations

import argparse
import os
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("RAINCLEAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: Chromium's fake microphone (a beep) and automatic permission, for recording in tests
FAKE_MEDIA_ARGS = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
DEFAULT_DATA = Path(os.environ.get("RAINCLEAN_SHARED_DATA", ROOT.parent / "shared" / "data"))


class BrowserMissing(RuntimeError):
    """Playwright's Python package or Debian's chromium is not installed."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(settings: Any = None, ready_timeout: float = 120.0, **overrides: Any) -> Iterator[str]:
    """Run the app under a real uvicorn on 127.0.0.1 in a thread; yield its base URL once ``/ready``."""
    import uvicorn

    from service.app import create_app
    from service.settings import Settings

    settings = settings or Settings(**{"log_level": "WARNING", **overrides})
    app = create_app(settings, configure_logging=False)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    key = settings.api_key.get_secret_value() if settings.api_key else None
    try:
        deadline = time.monotonic() + ready_timeout
        while True:
            request = urllib.request.Request(base + "/ready", headers={"Authorization": f"Bearer {key}"} if key else {})
            try:
                with urllib.request.urlopen(request, timeout=5) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the service at {base} did not become ready")
            time.sleep(0.1)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def launch_chromium(extra_args: list[str] | tuple[str, ...] = ()) -> Iterator[Any]:
    """Playwright's Chromium driver on Debian's ``/usr/bin/chromium``: yields a Browser."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise BrowserMissing("Playwright's Python package is missing: install it with `pip install playwright` "
                             "(do not run `playwright install`: the test uses Debian's chromium)") from exc
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        raise BrowserMissing(f"Chromium not found at {CHROMIUM}: install Debian's package with "
                             "`apt-get install -y chromium` (or point RAINCLEAN_CHROMIUM at a chromium binary)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=[*CHROMIUM_ARGS, *extra_args])
        try:
            yield browser
        finally:
            browser.close()


def make_noisy_mixture(out: Path, data_dir: Path = DEFAULT_DATA, seconds: float = 4.0, snr_db: float = 3.0,
                       sample_rate: int = 16000) -> Path:
    """A 16-bit WAV of a LibriSpeech utterance in ESC-50 rain (class 10) at ``snr_db``: a real noisy fixture."""
    from denoise_core.signal import load_mono

    speech_files = sorted((data_dir / "LibriSpeech").rglob("*.flac"))
    rain_files = sorted((data_dir / "ESC-50" / "audio").glob("*-10.wav"))
    if not speech_files or not rain_files:
        raise FileNotFoundError(f"LibriSpeech flacs or ESC-50 rain clips (*-10.wav) not found under {data_dir}")
    n = int(seconds * sample_rate)
    speech = load_mono(speech_files[0], sample_rate)[:n]
    rain = load_mono(rain_files[0], sample_rate)
    rain = np.tile(rain, int(np.ceil(len(speech) / max(1, len(rain)))))[: len(speech)]
    p_speech = float(np.mean(speech.astype(np.float64) ** 2)) + 1e-12
    p_rain = float(np.mean(rain.astype(np.float64) ** 2)) + 1e-12
    mix = speech + rain * np.sqrt(p_speech / (p_rain * 10 ** (snr_db / 10)))
    mix = 0.7 * mix / max(1e-6, float(np.max(np.abs(mix))))
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, mix.astype(np.float32), sample_rate, subtype="PCM_16")
    return out


def denoise_in_page(page: Any, audio: Path, timeout_ms: float = 120_000) -> None:
    """Choose ``audio`` in the page, press Denoise and wait until both spectrograms are drawn."""
    page.set_input_files("#file-input", str(audio))
    page.click("#denoise")
    page.wait_for_selector("body[data-state=done], body[data-state=error]", state="attached", timeout=timeout_ms)
    if page.evaluate("document.body.dataset.state") == "error":
        raise RuntimeError("the page shows an error: " + page.inner_text("#error"))


def take_screenshot(out: Path, data_dir: Path = DEFAULT_DATA, width: int = 1100) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        mixture = make_noisy_mixture(Path(tmp) / "speech-in-rain.wav", data_dir)
        with serve() as base, launch_chromium() as browser:
            page = browser.new_page(viewport={"width": width, "height": 900}, device_scale_factor=1)
            page.goto(base + "/")
            page.wait_for_selector("#model-info[data-version]", state="attached")
            denoise_in_page(page, mixture)
            page.evaluate("() => document.activeElement && document.activeElement.blur()")
            page.mouse.move(0, 0)
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out), full_page=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m service.screenshot", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "page.png", help="PNG to write")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with LibriSpeech/ and ESC-50/")
    parser.add_argument("--width", type=int, default=1100, help="viewport width in CSS pixels")
    args = parser.parse_args(argv)
    try:
        out = take_screenshot(args.out, args.data, args.width)
    except BrowserMissing as exc:
        parser.exit(2, f"error: {exc}\n")
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
