"""``WS /stream``: real-time denoising over a WebSocket, one stream state per connection.

Protocol (the README's "Streaming" section has a worked example):

1. The client connects to ``/stream`` and sends one JSON text message, the header::

       {"type": "start", "sample_rate": 16000, "channels": 1, "format": "pcm16", "token": "<API key>"}

   ``sample_rate`` 8000-48000 (resampled in the stream), ``channels`` 1 or 2 (each channel its own
   state), ``format`` ``"pcm16"`` (int16 little-endian) or ``"f32"`` (float32 little-endian),
   interleaved. ``token`` is needed only when ``API_KEY`` is set and the handshake carried no
   ``Authorization: Bearer <key>`` header.
2. The server answers with one JSON text message ``{"type": "ready", "model": {...},
   "latency_ms", "latency_samples", "sample_rate", "channels", "format", ...}``.
3. Binary frames of any whole number of samples in; for each, exactly one binary frame out
   (same format, same rate and channels; the same number of samples at 16 kHz), in order:
   the denoised audio delayed by ``latency_samples``.
4. ``{"type": "flush"}`` ends the utterance: the server sends the tail as one binary frame, then
   ``{"type": "flushed", "samples_in", "samples_out"}``; the stream then starts afresh (new state,
   the same header) for the next utterance, or the client closes.

Close codes: 1003 unknown message type; 1007 a bad header value, malformed JSON or a binary
frame that is not a whole number of samples; 1008 missing or wrong API key; 1001 idle for
``STREAM_IDLE_TIMEOUT`` seconds; 1013 more than ``MAX_STREAMS`` streams, or the streaming model
still loading; 1011 no streaming model (``STREAM_MODEL_PATH`` missing or not a streaming
export) or an internal error. Every close carries a reason.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from denoise_core.stream_batching import StreamBatcher
from denoise_core.streaming import MAX_RATE, MIN_RATE, Steps, StreamingDenoiser, StreamingModel
from service.metrics import Metrics
from service.settings import Settings

log = logging.getLogger("service.stream")

FORMATS = {"pcm16": 2, "f32": 4}
CLOSE_GOING_AWAY, CLOSE_UNSUPPORTED, CLOSE_INVALID, CLOSE_POLICY, CLOSE_INTERNAL, CLOSE_TRY_LATER = 1001, 1003, 1007, 1008, 1011, 1013


class StreamClose(Exception):
    """Close the WebSocket with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason[:120]  # a close reason must fit in 123 bytes


class StreamService:
    """The streaming model (loaded at start-up, optional) and the live streams.

    Every stream's pushes run on :attr:`batcher`'s one thread, where the model calls of
    concurrent streams share one onnxruntime call (``STREAM_MAX_BATCH`` rows at most).
    """

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings, self.metrics = settings, metrics
        self.model: StreamingModel | None = None
        self.batcher: StreamBatcher | None = None
        self.state = "loading"
        self.error: str | None = None
        self.active = 0
        metrics.streams_active.set_function(lambda: self.active)

    def load(self) -> None:
        path = Path(self.settings.stream_model_path)
        try:
            if not path.is_file():
                raise FileNotFoundError(f"no streaming model at {path} (STREAM_MODEL_PATH); export one with "
                                        "python -m training.export_stream")
            model = StreamingModel(path, intra_op_threads=self.settings.ort_intra_op_threads or 1)
            batcher = StreamBatcher(model, self.settings.stream_max_batch, on_batch=self.metrics.stream_batch_rows.observe)
            denoiser = StreamingDenoiser(model)  # warm-up
            batcher.run(denoiser.push_steps(np.zeros(model.spec.hop_length * 4, np.float32)))
            batcher.run(denoiser.flush_steps())
            self.batcher = batcher  # before model: a stream that sees the model finds its batcher
            self.model = model
            self.state = "ready"
            log.info("streaming model loaded", extra={"model_path": str(path)})
        except Exception as exc:  # missing file, not a streaming export, onnxruntime errors
            self.state, self.error = "unavailable", str(exc)
            log.warning("streaming unavailable: %s", exc)

    def close(self) -> None:
        """Stop the batcher's thread once the submitted pushes are done (at shutdown)."""
        if self.batcher is not None:
            self.batcher.close()

    async def run(self, steps: Steps[np.ndarray]) -> np.ndarray:
        """Run a stream's push or flush (a step generator) on the batcher; its samples."""
        assert self.batcher is not None
        return await asyncio.wrap_future(self.batcher.submit(steps))

    def describe(self) -> dict[str, Any]:
        """The ``streaming`` entry of ``/model-info``."""
        s = self.settings
        base = {"available": self.model is not None, "state": self.state, "endpoint": "/stream",
                "max_streams": s.max_streams, "idle_timeout_seconds": s.stream_idle_timeout,
                "active_streams": self.active, "max_batch_rows": s.stream_max_batch, "formats": sorted(FORMATS), "sample_rates": [MIN_RATE, MAX_RATE],
                "channels": [1, 2]}
        if self.model is None:
            return {**base, "reason": self.error or "the streaming model is loading"}
        return {**base, **self.model.describe()}


def _parse_header(text: str, model: StreamingModel) -> dict[str, Any]:
    try:
        header = json.loads(text)
    except ValueError:
        raise StreamClose(CLOSE_INVALID, "the first message must be JSON: {\"type\": \"start\", \"sample_rate\": ..., "
                                         "\"channels\": ..., \"format\": ...}") from None
    if not isinstance(header, dict) or header.get("type", "start") != "start":
        raise StreamClose(CLOSE_INVALID, "the first message must be a JSON object with type 'start'")
    rate, channels, fmt = header.get("sample_rate"), header.get("channels", 1), header.get("format", "pcm16")
    if not isinstance(rate, int) or isinstance(rate, bool) or not MIN_RATE <= rate <= MAX_RATE:
        raise StreamClose(CLOSE_INVALID, f"sample_rate must be an integer {MIN_RATE}-{MAX_RATE}, got {rate!r}")
    if channels not in (1, 2) or isinstance(channels, bool):
        raise StreamClose(CLOSE_INVALID, f"channels must be 1 or 2, got {channels!r}")
    if fmt not in FORMATS:
        raise StreamClose(CLOSE_INVALID, f"format must be 'pcm16' or 'f32', got {fmt!r}")
    return {"sample_rate": rate, "channels": channels, "format": fmt, "token": header.get("token")}


def decode_frame(data: bytes, fmt: str, channels: int) -> np.ndarray:
    width = FORMATS[fmt] * channels
    if len(data) % width:
        raise StreamClose(CLOSE_INVALID, f"a binary frame of {len(data)} bytes is not a whole number of "
                                         f"{channels}-channel {fmt} samples ({width} bytes each)")
    if fmt == "pcm16":
        x = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
    else:
        x = np.frombuffer(data, "<f4").astype(np.float32)
        if not np.all(np.isfinite(x)):
            raise StreamClose(CLOSE_INVALID, "the frame holds NaN or infinite samples")
    return x.reshape(-1, channels)


def encode_frame(y: np.ndarray, fmt: str) -> bytes:
    y = np.clip(y, -1.0, 1.0)
    if fmt == "pcm16":
        return np.clip(np.round(y * 32768.0), -32768, 32767).astype("<i2").tobytes()
    return y.astype("<f4").tobytes()


def _authorised(ws: WebSocket, settings: Settings, token: Any) -> bool:
    if settings.api_key is None:
        return True
    key = settings.api_key.get_secret_value().encode()
    scheme, _, header_token = ws.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(header_token.strip().encode(), key):
        return True
    return isinstance(token, str) and hmac.compare_digest(token.strip().encode(), key)


async def _receive(ws: WebSocket, timeout: float) -> dict[str, Any]:
    try:
        message = await asyncio.wait_for(ws.receive(), timeout)
    except asyncio.TimeoutError:
        raise StreamClose(CLOSE_GOING_AWAY, f"idle timeout: no message for {timeout:g} s") from None
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    return message


def install_stream(app: FastAPI, streams: StreamService) -> None:
    settings, metrics = streams.settings, streams.metrics

    @app.websocket("/stream")
    async def stream(ws: WebSocket) -> None:
        await ws.accept()
        holding = False
        try:
            if streams.model is None:
                if streams.state == "loading":
                    raise StreamClose(CLOSE_TRY_LATER, "the streaming model is loading: try again in a moment")
                raise StreamClose(CLOSE_INTERNAL, f"streaming is unavailable: {streams.error}")
            if streams.active >= settings.max_streams:
                raise StreamClose(CLOSE_TRY_LATER, f"too many streams: the limit is {settings.max_streams} (MAX_STREAMS)")
            model = streams.model
            first = await _receive(ws, settings.stream_idle_timeout)
            if first.get("text") is None:
                raise StreamClose(CLOSE_INVALID, "the first message must be the JSON header (a text message)")
            header = _parse_header(first["text"], model)
            if not _authorised(ws, settings, header["token"]):
                raise StreamClose(CLOSE_POLICY, "missing or invalid API key (send 'Authorization: Bearer <key>' or "
                                                "'token' in the header)")
            if streams.active >= settings.max_streams:
                raise StreamClose(CLOSE_TRY_LATER, f"too many streams: the limit is {settings.max_streams} (MAX_STREAMS)")
            streams.active += 1
            holding = True
            rate, channels, fmt = header["sample_rate"], header["channels"], header["format"]
            denoiser = StreamingDenoiser(model, rate, channels)
            await ws.send_json({
                "type": "ready", "model": {"name": model.info.name, "version": model.info.version},
                "sample_rate": rate, "channels": channels, "format": fmt,
                "latency_ms": round(denoiser.latency_ms, 3), "latency_samples": denoiser.delay,
                "model_latency_ms": model.latency_ms, "lookahead_frames": model.lookahead,
                "bytes_per_sample": FORMATS[fmt], "byte_order": "little", "interleaved": True,
            })
            while True:
                message = await _receive(ws, settings.stream_idle_timeout)
                data = message.get("bytes")
                if data is not None:
                    t0 = time.perf_counter()
                    x = decode_frame(data, fmt, channels)
                    payload = encode_frame(await streams.run(denoiser.push_steps(x)), fmt)
                    metrics.stream_block_seconds.observe(time.perf_counter() - t0)
                    metrics.stream_audio_seconds.inc(x.shape[0] / rate)
                    await ws.send_bytes(payload)
                    continue
                try:
                    control = json.loads(message.get("text") or "")
                except ValueError:
                    raise StreamClose(CLOSE_INVALID, "text messages must be JSON, e.g. {\"type\": \"flush\"}") from None
                kind = control.get("type") if isinstance(control, dict) else None
                if kind != "flush":
                    raise StreamClose(CLOSE_UNSUPPORTED, f"unknown message type {kind!r}: send binary audio or "
                                                         "{\"type\": \"flush\"}")
                tail = encode_frame(await streams.run(denoiser.flush_steps()), fmt)
                await ws.send_bytes(tail)
                await ws.send_json({"type": "flushed", "samples_in": denoiser.samples_in, "samples_out": denoiser.samples_out})
                denoiser = StreamingDenoiser(model, rate, channels)  # a new utterance starts afresh
        except StreamClose as close:
            log.info("stream closed", extra={"close_code": close.code, "reason": close.reason})
            try:
                await ws.close(close.code, close.reason)
            except Exception:  # the client is gone already
                pass
        except WebSocketDisconnect:
            pass
        except Exception:
            log.exception("stream failed")
            try:
                await ws.close(CLOSE_INTERNAL, "internal error")
            except Exception:
                pass
        finally:
            if holding:
                streams.active -= 1
