"""The model engine: loading + warm-up, bounded concurrency, and the denoise code path.

:func:`denoise_bytes` is the single code path from uploaded bytes to encoded clean
audio; the HTTP endpoint, the CLI and the benchmark all call it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np

from denoise_core.model_file import OnnxModel
from service import audio_io
from service.admission import AdmissionQueue, CostModel
from service.audio_io import Limits, OutputFormat
from service.errors import ServiceError, too_large, unavailable
from service.memory import limit_malloc_arenas, release_free_memory, rss_bytes
from service.settings import Settings

log = logging.getLogger("service.inference")
T = TypeVar("T")

RETRY_AFTER_LOADING = 5
RETRY_AFTER_STOPPING = 5
RETRY_AFTER_FAILED = 30
WARMUP_SECONDS = 1.0
#: after a request, hand freed heap memory back to the system when the process holds more than this
TRIM_ABOVE_BYTES = 192 * 1024 * 1024


@dataclass(frozen=True)
class DenoiseResult:
    payload: bytes
    media_type: str
    sample_rate: int
    channels: int
    frames: int
    input_format: str
    input_subtype: str
    output_subtype: str
    seconds: float  # processing time: decode + denoise + encode
    queue_seconds: float = 0.0  # time waiting for an inference slot

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def limits_from(settings: Settings) -> Limits:
    return Limits(settings.max_upload_bytes, settings.max_duration_seconds, settings.max_channels)


def denoise_bytes(model: OnnxModel, data: bytes, settings: Settings, fmt: OutputFormat = "wav",
                  attenuation_limit_db: float | None = None) -> DenoiseResult:
    """Uploaded bytes -> checked header -> decoded audio -> model -> encoded bytes (blocking).

    ``attenuation_limit_db`` (None: no limit) caps how far the noise is attenuated."""
    t0 = time.perf_counter()
    limits = limits_from(settings)
    if len(data) > limits.max_upload_bytes:
        raise too_large(f"upload exceeds the limit of {limits.max_upload_bytes} bytes")
    header = audio_io.probe(data, limits)
    audio, sr = audio_io.decode(data, limits)
    clean = model.denoise(audio, sr, settings.chunk_seconds, settings.chunk_overlap_seconds,
                          attenuation_limit_db=attenuation_limit_db)
    if clean.shape != audio.shape or not np.all(np.isfinite(clean)):  # contract check, never expected
        raise RuntimeError(f"model returned shape {clean.shape} for input {audio.shape} or non-finite samples")
    subtype = audio_io.output_subtype(header.subtype, fmt)
    payload = audio_io.encode(clean, sr, fmt, subtype)
    return DenoiseResult(payload, audio_io.MEDIA_TYPES[fmt], sr, audio.shape[1], audio.shape[0], header.format,
                         header.subtype, subtype, time.perf_counter() - t0)


class Engine:
    """Owns the model, its readiness state and the worker threads that run it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.model: OnnxModel | None = None
        self.state = "loading"  # loading | ready | failed
        self.reason = "model is loading"
        self.load_seconds: float | None = None
        self.limiter = AdmissionQueue(settings.max_concurrency, settings.max_queue, settings.queue_timeout)
        self.costs = CostModel()
        self.draining = False
        limit_malloc_arenas()
        self.executor = ThreadPoolExecutor(max_workers=settings.max_concurrency, thread_name_prefix="denoise")

    @property
    def ready(self) -> bool:
        return self.state == "ready" and self.model is not None

    # ------------------------------------------------------------ loading
    def load(self) -> None:
        """Load the model and run a warm-up inference (blocking). Sets ``state``."""
        t0 = time.perf_counter()
        path = Path(self.settings.model_path)
        try:
            if not path.is_file():
                raise FileNotFoundError(f"model file not found: {path}")
            model = OnnxModel(path, self.settings.intra_op_threads, self.settings.ort_inter_op_threads,
                              self.settings.ort_memory_pattern)
            self._warm_up(model)
        except Exception as exc:
            self.state, self.reason = "failed", f"{type(exc).__name__}: {exc}"
            log.error("model unavailable", extra={"model_path": str(path), "reason": self.reason})
            return
        self.model, self.load_seconds = model, time.perf_counter() - t0
        self.state, self.reason = "ready", "model loaded and warmed up"
        log.info("model ready", extra={"model_name": model.info.name, "model_version": model.info.version,
                                       "sha256": model.sha256, "load_seconds": round(self.load_seconds, 3),
                                       "intra_op_threads": model.intra_op_threads,
                                       "inter_op_threads": model.inter_op_threads})

    def _warm_up(self, model: OnnxModel) -> None:
        sr = model.spec.sample_rate
        rng = np.random.default_rng(0)
        audio = (0.01 * rng.standard_normal((int(WARMUP_SECONDS * sr), 1))).astype(np.float32)
        out = model.denoise(audio, sr, self.settings.chunk_seconds, self.settings.chunk_overlap_seconds)
        if out.shape != audio.shape or not np.all(np.isfinite(out)):
            raise ValueError(f"warm-up inference returned shape {out.shape} (expected {audio.shape}) or non-finite values")

    async def start(self) -> None:
        await self.run_blocking(self.load)

    def drain(self) -> None:
        """Stop taking new requests (``/ready`` turns 503); admitted ones still finish."""
        self.draining = True

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ serving
    def require_ready(self) -> OnnxModel:
        if self.draining:
            raise unavailable("shutting_down", "the server is shutting down; retry on another instance", RETRY_AFTER_STOPPING)
        if self.ready:
            assert self.model is not None
            return self.model
        if self.state == "loading":
            raise unavailable("not_ready", "model is loading; retry shortly", RETRY_AFTER_LOADING)
        raise unavailable("model_unavailable", f"model could not be loaded: {self.reason}", RETRY_AFTER_FAILED)

    async def run_blocking(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn`` in the worker pool, keeping the caller's context (request ID in logs)."""
        ctx = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self.executor, partial(ctx.run, fn, *args))

    def audio_seconds(self, data: bytes) -> float:
        """Seconds of audio in an upload, all channels together, from its header (0 if unreadable:
        the worker then reports the error)."""
        try:
            header = audio_io.probe(data, limits_from(self.settings))
        except ServiceError:
            return 0.0
        return header.frames * header.channels / max(header.sample_rate, 1)

    async def denoise(self, data: bytes, fmt: OutputFormat, attenuation_limit_db: float | None = None) -> DenoiseResult:
        """Queue for a slot (first in, first out), then run :func:`denoise_bytes` in a worker thread."""
        model = self.require_ready()
        seconds = self.audio_seconds(data)
        async with self.limiter.slot(self.costs.expected(seconds)) as queued:
            job = asyncio.ensure_future(self.run_blocking(self._process, model, data, fmt, seconds,
                                                        attenuation_limit_db))
            try:
                result = await asyncio.shield(job)
            except asyncio.CancelledError:
                # the caller went away: keep the slot until the worker thread is really free
                await asyncio.wait([job])
                raise
        self.costs.observe(seconds, result.seconds)
        return replace(result, queue_seconds=queued)

    def _process(self, model: OnnxModel, data: bytes, fmt: OutputFormat, seconds: float,
                 attenuation_limit_db: float | None = None) -> DenoiseResult:
        try:
            return denoise_bytes(model, data, self.settings, fmt, attenuation_limit_db)
        finally:
            if rss_bytes() > TRIM_ABOVE_BYTES:
                release_free_memory()
