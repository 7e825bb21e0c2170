"""Reference client for ``WS /stream``: ``python -m service.stream_client FILE --url ws://host:8000/stream``.

Reads FILE (any rate libsndfile reads; outside 8-48 kHz it is resampled to 16 kHz first, more than two
channels are mixed down to mono), declares its rate, channels and format in the header message, sends
it in ``--chunk-ms`` frames (in real time with ``--realtime``, else as fast as the server answers),
flushes, and writes the denoised audio aligned with the input (the reported latency removed) to
``--out``. Prints the latency and the processing figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from denoise_core.signal import resample
from service.stream_endpoint import FORMATS, decode_frame, encode_frame

MIN_RATE, MAX_RATE = 8000, 48000


@dataclass
class StreamResult:
    audio: np.ndarray  # (samples, channels), aligned with the input
    raw: np.ndarray  # everything received, latency included
    ready: dict[str, Any]
    sample_rate: int
    seconds: float  # wall time from the first frame sent to "flushed"
    response_seconds: list[float] = field(default_factory=list)  # per frame: send -> its answer


def prepare(audio: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    """What the client sends: at most 2 channels, a rate in 8-48 kHz."""
    if audio.ndim == 1:
        audio = audio[:, np.newaxis]
    if audio.shape[1] > 2:
        audio = audio.mean(axis=1, keepdims=True)
    if not MIN_RATE <= rate <= MAX_RATE:
        audio = np.stack([resample(audio[:, c], rate, 16000) for c in range(audio.shape[1])], axis=1)
        rate = 16000
    return audio.astype(np.float32), rate


def stream_audio(audio: np.ndarray, rate: int, url: str, fmt: str = "f32", chunk_sizes: list[int] | None = None,
                 chunk_ms: float = 20.0, realtime: bool = False, token: str | None = None,
                 open_timeout: float = 30.0) -> StreamResult:
    """Stream ``(samples, channels)`` audio at ``rate``; frames of ``chunk_sizes`` samples (cycled) or ``chunk_ms``."""
    from websockets.sync.client import connect

    audio, rate = prepare(audio, rate)
    channels = audio.shape[1]
    sizes = chunk_sizes or [max(1, int(round(rate * chunk_ms / 1000)))]
    chunks, start, i = [], 0, 0
    while start < audio.shape[0]:
        n = sizes[i % len(sizes)]
        chunks.append(audio[start : start + n])
        start += n
        i += 1
    headers = {"Authorization": f"Bearer {token}"} if token else None
    with connect(url, additional_headers=headers, open_timeout=open_timeout, max_size=None) as ws:
        ws.send(json.dumps({"type": "start", "sample_rate": rate, "channels": channels, "format": fmt}))
        ready = json.loads(ws.recv())
        if ready.get("type") != "ready":
            raise RuntimeError(f"unexpected first message: {ready}")
        sent: list[float] = []
        received: list[np.ndarray] = []
        answered: list[float] = []
        flushed: dict[str, Any] = {}
        errors: list[BaseException] = []

        def reader() -> None:
            try:
                while True:
                    message = ws.recv()
                    if isinstance(message, bytes):
                        received.append(decode_frame(message, fmt, channels))
                        answered.append(time.perf_counter())
                    else:
                        msg = json.loads(message)
                        if msg.get("type") == "flushed":
                            flushed.update(msg)
                            return
            except BaseException as exc:  # closed by the server: reported below
                errors.append(exc)

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        offsets = np.concatenate([[0], np.cumsum([c.shape[0] for c in chunks])])
        t0 = time.perf_counter()
        for k, chunk in enumerate(chunks):
            if realtime:  # frame k is due once its last sample has been "recorded"
                time.sleep(max(0.0, t0 + offsets[k + 1] / rate - time.perf_counter()))
            sent.append(time.perf_counter())
            ws.send(encode_frame(chunk, fmt))
        ws.send(json.dumps({"type": "flush"}))
        thread.join()
        seconds = time.perf_counter() - t0
        if errors:
            raise RuntimeError(f"the stream ended early: {errors[0]}")
    raw = np.concatenate(received) if received else np.zeros((0, channels), np.float32)
    delay = int(ready["latency_samples"])
    aligned = raw[delay : delay + audio.shape[0]]
    response = [a - s for s, a in zip(sent, answered)]  # one answer per frame, in order; the last is the tail
    return StreamResult(aligned, raw, ready, rate, seconds, response)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m service.stream_client", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", type=Path, help="audio file to stream")
    p.add_argument("--url", default="ws://127.0.0.1:8000/stream", help="the /stream endpoint (default %(default)s)")
    p.add_argument("--out", type=Path, default=None, help="write the denoised audio here (WAV; aligned with the input)")
    p.add_argument("--realtime", action="store_true", help="send at the audio's pace instead of as fast as possible")
    p.add_argument("--chunk-ms", type=float, default=20.0, help="frame length in ms (default %(default)s)")
    p.add_argument("--format", choices=sorted(FORMATS), default="pcm16", help="sample format on the wire (default %(default)s)")
    p.add_argument("--token", default=None, help="API key (sent as Authorization: Bearer)")
    args = p.parse_args(argv)
    try:
        audio, rate = sf.read(str(args.file), dtype="float32", always_2d=True)
    except Exception as exc:
        print(f"error: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    try:
        result = stream_audio(audio, rate, args.url, args.format, chunk_ms=args.chunk_ms, realtime=args.realtime,
                              token=args.token)
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    ready, duration = result.ready, audio.shape[0] / rate
    resp = np.array(result.response_seconds or [0.0]) * 1000
    print(f"model {ready['model']['name']} {ready['model']['version']}; {result.sample_rate} Hz, "
          f"{ready['channels']} channel(s), {ready['format']}")
    print(f"latency: {ready['latency_ms']:.1f} ms = {ready['latency_samples']} samples (model {ready['model_latency_ms']:.1f} ms)")
    print(f"streamed {duration:.2f} s of audio in {result.seconds:.2f} s ({result.seconds / max(duration, 1e-9):.3f} s per audio s); "
          f"frame response ms: median {np.median(resp):.2f}, p95 {np.percentile(resp, 95):.2f}, max {resp.max():.2f}")
    if args.out:
        sf.write(str(args.out), result.audio, result.sample_rate, subtype="FLOAT" if args.format == "f32" else "PCM_16")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
