"""The try-it page in a real headless Chromium against a real uvicorn serving the shipped model.

Debian's ``chromium`` (/usr/bin/chromium) driven by Playwright's Python package; no browser
build is downloaded. A missing browser or package fails the test with how to install it.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterator

import httpx
import numpy as np
import pytest
import soundfile as sf

from service.screenshot import (FAKE_MEDIA_ARGS, BrowserMissing, denoise_in_page, launch_chromium,
                                make_noisy_mixture, serve)
from service.settings import DEFAULT_MODEL_PATH, Settings

pytestmark = pytest.mark.e2e
KEY = "page-test-key"

# the after-player's audio as the browser has it: its WAV header, and decodeAudioData at the header's rate
DECODE_AFTER = """async () => {
  const buf = await (await fetch(document.getElementById('after-audio').src)).arrayBuffer();
  const head = window.rainclean.wav.parseWavHeader(buf);
  const ctx = new OfflineAudioContext(1, 1, head.sampleRate);
  const audio = await ctx.decodeAudioData(buf.slice(0));
  return {head, sampleRate: audio.sampleRate, length: audio.length, duration: audio.duration,
          channels: audio.numberOfChannels};
}"""

# share of non-black pixels and mean brightness of a spectrogram canvas
CANVAS_STATS = """(id) => {
  const c = document.getElementById(id);
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let lit = 0, sum = 0;
  for (let i = 0; i < d.length; i += 4) {
    const v = d[i] + d[i + 1] + d[i + 2];
    if (d[i + 3] > 0 && v > 30) lit++;
    sum += v;
  }
  const n = d.length / 4;
  return {lit: lit / n, mean: sum / (3 * n), drawn: c.dataset.drawn === 'true'};
}"""


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        with launch_chromium(FAKE_MEDIA_ARGS) as b:
            yield b
    except BrowserMissing as exc:
        pytest.fail(f"the page's browser test needs a real Chromium: {exc}")


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    with serve(Settings(model_path=DEFAULT_MODEL_PATH, log_level="WARNING", ort_intra_op_threads=1)) as base:
        yield base


@pytest.fixture(scope="module")
def keyed_service(models) -> Iterator[str]:
    with serve(Settings(model_path=models["passthrough"], log_level="WARNING", ort_intra_op_threads=1,
                        api_key=KEY)) as base:
        yield base


@pytest.fixture(scope="module")
def noisy(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_noisy_mixture(tmp_path_factory.mktemp("audio") / "speech-in-rain.wav", shared_data, seconds=3.0)


def open_page(browser, base: str, **context_args):
    context = browser.new_context(viewport={"width": 1000, "height": 900}, **context_args)
    page = context.new_page()
    page.set_default_timeout(60_000)
    messages: list[str] = []
    foreign: list[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    page.on("request", lambda r: None if r.url.startswith((base, "blob:", "data:")) else foreign.append(r.url))
    response = page.goto(base + "/")
    assert response is not None and response.status == 200
    return page, response, messages, foreign


def test_page_denoises_an_uploaded_noisy_recording(browser, service, noisy, tmp_path):
    page, response, messages, foreign = open_page(browser, service)
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["cache-control"] == "no-cache" and response.headers.get("etag")

    info = httpx.get(service + "/model-info", timeout=30).json()
    page.wait_for_selector("#model-info[data-version]", state="attached")
    assert page.inner_text("#model-info") == f"Model: {info['name']} {info['version']}"

    denoise_in_page(page, noisy)
    assert page.get_attribute("#denoise", "aria-busy") == "false" and page.is_enabled("#denoise")

    # the after-player's audio has the input's sample rate and duration
    expected = sf.info(str(noisy))
    got = page.evaluate(DECODE_AFTER)
    assert got["head"]["sampleRate"] == expected.samplerate == 16000
    assert got["head"]["frames"] == expected.frames and got["head"]["channels"] == 1
    assert got["sampleRate"] == expected.samplerate and got["length"] == expected.frames
    assert got["duration"] == pytest.approx(expected.duration, abs=1e-3)

    # both spectrograms drawn; the denoised one is darker on the same dB scale
    before, after = page.evaluate(CANVAS_STATS, "before-spec"), page.evaluate(CANVAS_STATS, "after-spec")
    assert before["drawn"] and after["drawn"], (before, after)
    assert before["lit"] > 0.5 and after["lit"] > 0.2, (before, after)
    assert after["mean"] < before["mean"], (before, after)

    # processing time from X-Processing-Time, a download of the result
    assert float(page.get_attribute("#timing", "data-processing-time")) > 0
    assert page.inner_text("#timing").startswith("Processed in ")
    assert page.get_attribute("#download", "href").startswith("blob:")
    assert page.get_attribute("#download", "download") == "speech-in-rain-denoised.wav"
    assert page.is_visible("#download") and page.is_hidden("#error")

    # assets: long-lived cache (content-hashed URLs) and the same CSP
    html = httpx.get(service + "/", timeout=30).text
    for asset in ("app.js", "style.css"):
        url = html.split(f"/static/{asset}?v=")[1].split('"')[0]
        r = httpx.get(f"{service}/static/{asset}?v={url}", timeout=30)
        assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
        assert r.headers["content-security-policy"] == csp

    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert not foreign, f"the page fetched from another host: {foreign}"
    assert not [m for m in messages if m.startswith(("error", "pageerror"))], messages
    page.context.close()


def test_page_shows_the_api_error_for_an_invalid_file(browser, service, tmp_path):
    bad = tmp_path / "x.wav"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    api = httpx.post(service + "/denoise", files={"file": ("x.wav", bad.read_bytes(), "audio/wav")}, timeout=30)
    assert api.status_code == 400
    message = api.json()["error"]["message"]

    page, _, _, _ = open_page(browser, service)
    page.set_input_files("#file-input", str(bad))
    page.click("#denoise")
    page.wait_for_selector("body[data-state=error]", state="attached")
    text = page.inner_text("#error")
    assert "could not be read as audio" in text and message in text
    assert page.get_attribute("#error", "role") == "alert" and page.is_enabled("#denoise")
    assert page.get_attribute("#after-audio", "src") is None
    page.screenshot(path=str(tmp_path / "error.png"), full_page=True)
    page.context.close()


def test_page_with_an_api_key(browser, keyed_service, noisy, tmp_path):
    # the page and its assets are open, the API is not
    with httpx.Client(base_url=keyed_service, timeout=30) as c:
        html = c.get("/")
        assert html.status_code == 200
        asset = html.text.split('src="')[1].split('"')[0]
        assert asset.startswith("/static/") and c.get(asset).status_code == 200
        assert c.get("/model-info").status_code == 401
        assert c.post("/denoise", files={"file": ("a.wav", noisy.read_bytes(), "audio/wav")}).status_code == 401
        assert c.post("/").status_code == 401  # only GET/HEAD of the page is open

    page, _, _, _ = open_page(browser, keyed_service)
    page.wait_for_selector("#key-section:not([hidden])")
    assert "needs an API key" in page.inner_text("#key-help")

    # a wrong key: the 401 is explained
    page.fill("#api-key", "wrong")
    page.press("#api-key", "Enter")
    page.set_input_files("#file-input", str(noisy))
    page.click("#denoise")
    page.wait_for_selector("body[data-state=error]", state="attached")
    text = page.inner_text("#error")
    assert "valid API key" in text and "missing or invalid API key" in text
    assert page.evaluate("() => document.activeElement.id") == "api-key"

    # the right key, typed and submitted by keyboard: model info and a result
    page.fill("#api-key", KEY)
    page.keyboard.press("Enter")
    page.wait_for_selector("#model-info[data-version]", state="attached")
    denoise_in_page(page, noisy)
    assert page.evaluate(DECODE_AFTER)["length"] == sf.info(str(noisy)).frames
    page.screenshot(path=str(tmp_path / "keyed.png"), full_page=True)
    page.context.close()


def test_wav_encoder_and_microphone_recording(browser, service, tmp_path):
    page, _, messages, _ = open_page(browser, service, permissions=["microphone"])

    # the page's encoder, unit-tested in the browser: 16-bit PCM, clipped, read back by libsndfile
    values = [0.0, 0.5, -0.5, 1.0, -1.0, 2.0, -2.0, 0.25]
    data = page.evaluate("""(v) => Array.from(new Uint8Array(window.rainclean.wav.encodeWav(
        [new Float32Array(v), new Float32Array(v.map((x) => -x))], 8000)))""", values)
    audio, sr = sf.read(io.BytesIO(bytes(data)), dtype="int16")
    info = sf.info(io.BytesIO(bytes(data)))
    assert sr == 8000 and info.subtype == "PCM_16" and audio.shape == (len(values), 2)
    expected = np.array([0, 16384, -16384, 32767, -32768, 32767, -32768, 8192])
    np.testing.assert_allclose(audio[:, 0], expected, atol=1)
    np.testing.assert_allclose(audio[:, 1], [0, -16384, 16384, -32768, 32767, -32768, 32767, -8192], atol=1)
    head = page.evaluate("(d) => window.rainclean.wav.parseWavHeader(new Uint8Array(d).buffer)", data)
    assert head["sampleRate"] == 8000 and head["channels"] == 2 and head["frames"] == len(values)

    # Chromium's fake microphone (a beep): record about 1.5 s, then it is the input, and denoises
    page.focus("#record")  # keyboard only: Enter on the focused button starts and stops
    page.keyboard.press("Enter")
    page.wait_for_selector("#record[aria-pressed=true]")
    page.wait_for_timeout(1500)
    page.keyboard.press("Enter")
    page.wait_for_selector("#before-spec[data-drawn=true]")
    rec = page.evaluate("""async () => {
      const buf = await (await fetch(document.getElementById('before-audio').src)).arrayBuffer();
      const head = window.rainclean.wav.parseWavHeader(buf);
      const v = new DataView(buf);
      let peak = 0;
      for (let o = 44; o < buf.byteLength; o += 2) peak = Math.max(peak, Math.abs(v.getInt16(o, true)));
      return {head, peak};
    }""")
    assert rec["head"]["format"] == 1 and rec["head"]["bitsPerSample"] == 16 and rec["head"]["channels"] == 1
    assert rec["head"]["sampleRate"] >= 8000 and 0.5 < rec["head"]["duration"] < 10, rec
    assert rec["peak"] > 100, "the fake microphone's beep was not recorded"
    assert page.inner_text("#input-name").startswith("Chosen: recording.wav")
    page.click("#denoise")
    page.wait_for_selector("body[data-state=done]", state="attached")
    got = page.evaluate(DECODE_AFTER)
    assert got["head"]["sampleRate"] == rec["head"]["sampleRate"] and got["head"]["frames"] == rec["head"]["frames"]
    page.screenshot(path=str(tmp_path / "recorded.png"), full_page=True)
    assert not [m for m in messages if m.startswith("pageerror")], messages
    page.context.close()


def test_live_denoising_streams_the_microphone(browser, service, tmp_path):
    """Keyboard only: Enter on "Start live denoising" streams Chromium's fake microphone through
    WS /stream and plays what comes back; Enter again flushes, and the tail makes the output the
    input plus the stream's delay, sample for sample."""
    page, _, messages, _ = open_page(browser, service, permissions=["microphone"])
    page.wait_for_selector("#live-section:not([hidden])")
    assert page.inner_text("#live-latency") == "64 ms"
    assert page.is_hidden("#download")  # nothing to download before a denoise
    before = metric(service, "rainclean_stream_audio_seconds_total")
    page.focus("#live")
    page.keyboard.press("Enter")
    page.wait_for_selector("#live-section[data-state=live]")
    assert page.get_attribute("#live", "aria-pressed") == "true"
    page.wait_for_function("() => { const d = document.getElementById('live-status').dataset;"
                           " return Number(d.received) > 1.0 * Number(d.rate); }")
    page.keyboard.press("Enter")
    page.wait_for_selector("#live-section[data-state=stopped]")
    d = page.evaluate("() => ({...document.getElementById('live-status').dataset})")
    rate, sent, received = int(d["rate"]), int(d["sent"]), int(d["received"])
    assert received == sent + int(d["latencySamples"]), d
    assert metric(service, "rainclean_stream_audio_seconds_total") - before == pytest.approx(sent / rate, abs=1e-6)
    assert page.get_attribute("#live", "aria-pressed") == "false" and "Stopped." in page.inner_text("#live-status")
    page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
    assert not [m for m in messages if m.startswith("pageerror")], messages
    page.context.close()


def test_live_controls_stay_hidden_without_a_streaming_model(browser, models):
    settings = Settings(model_path=models["passthrough"], log_level="WARNING", ort_intra_op_threads=1,
                        stream_model_path=Path("/nonexistent/stream.onnx"))
    with serve(settings) as base:
        page, _, messages, _ = open_page(browser, base)
        page.wait_for_selector("#model-info[data-version]", state="attached")
        assert page.is_hidden("#live-section")
        assert not [m for m in messages if m.startswith("pageerror")], messages
        page.context.close()


def metric(base: str, name: str) -> float:
    text = httpx.get(base + "/metrics").text
    return float(next(line.split()[-1] for line in text.splitlines() if line.startswith(name + " ")))


AFTER_BYTES = """async () => {
  const blob = await (await fetch(document.getElementById("after-audio").src)).blob();
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}"""


def test_strength_control_limits_the_attenuation(browser, service, noisy, tmp_path):
    """Keyboard only: the slider's Home key sets the limit to 0 dB, which returns the input unchanged;
    the request carries the limit, and End goes back to full reduction without one."""
    import base64

    page, _, _, _ = open_page(browser, service)
    urls: list[str] = []
    page.on("request", lambda r: urls.append(r.url) if "/denoise" in r.url else None)
    assert page.inner_text("#strength-value") == "full"
    page.focus("#strength")
    page.keyboard.press("Home")
    assert page.inner_text("#strength-value") == "at most 0 dB"
    denoise_in_page(page, noisy)
    assert urls[-1].endswith("/denoise?attenuation_limit_db=0")
    out, sr = sf.read(io.BytesIO(base64.b64decode(page.evaluate(AFTER_BYTES))), dtype="float32")
    original, _ = sf.read(str(noisy), dtype="float32")
    assert sr == 16000 and np.max(np.abs(out - original)) <= 1 / 32768
    page.focus("#strength")
    page.keyboard.press("End")
    assert page.inner_text("#strength-value") == "full"
    denoise_in_page(page, noisy)
    assert urls[-1].endswith("/denoise")
    out, _ = sf.read(io.BytesIO(base64.b64decode(page.evaluate(AFTER_BYTES))), dtype="float32")
    assert np.max(np.abs(out - original)) > 0.01  # the model did change it
    page.screenshot(path=str(tmp_path / "strength.png"), full_page=True)
    page.context.close()
