"""The HTTP service: ``create_app(settings)`` builds the FastAPI app.

The model loads in the background at start-up (load + one warm-up inference), so
``/health`` answers at once while ``/ready`` says 503 until the model can serve.
A missing or invalid model file leaves the app up, ``/ready`` 503 with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import re
from contextlib import asynccontextmanager
from pathlib import PurePath
from typing import Any, AsyncIterator, Literal

import onnxruntime as ort
from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from service.version import __version__ as service_version
from service.audio_io import check_media_type, read_upload
from service.errors import install_handlers
from service.inference import Engine
from service.logging_setup import setup_logging
from service.metrics import Metrics
from service.middleware import ApiKeyAuth, RequestContext, UploadGuard
from service.page import OPEN_PATHS as PAGE_PATHS, OPEN_PREFIXES as PAGE_PREFIXES, install_page
from service.settings import Settings
from service.stream_endpoint import StreamService, install_stream

log = logging.getLogger("service.app")


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    service_version: str
    model_state: str


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    model_name: str
    model_version: str


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: {"model": ErrorResponse} for c in codes}


def _safe_stem(filename: str | None) -> str:
    stem = PurePath(filename or "audio").stem
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:100] or "audio"


def model_info_dict(engine: Engine) -> dict[str, Any]:
    model = engine.require_ready()
    info, spec, s = model.info, model.spec, engine.settings
    return {
        "name": info.name,
        "version": info.version,
        "preset": info.preset,
        "training_commit": info.training_commit,
        "file": model.path.name,
        "sha256": model.sha256,
        "sample_rate": spec.sample_rate,
        "stft": {"n_fft": spec.n_fft, "hop_length": spec.hop_length, "win_length": spec.window_length,
                 "window": spec.window, "center": spec.center},
        "features": {"magnitude": spec.magnitude, "compress_exponent": spec.compress_exponent, "output": spec.output},
        "normalisation": {"norm_min": spec.norm_min, "norm_max": spec.norm_max},
        "frame_multiple": spec.frame_multiple,
        "latency": {"lookahead_frames": spec.lookahead_frames,
                    "algorithmic_ms": None if spec.lookahead_frames is None
                    else 1000.0 * (spec.window_length + spec.lookahead_frames * spec.hop_length) / spec.sample_rate},
        "legal_lengths": (f"the network takes any frame count that is a multiple of {spec.frame_multiple}; "
                          "the service pads the STFT frames of each chunk to it and crops the output, "
                          "so any number of samples is accepted"),
        "signal": spec.to_dict(),
        **model.io_description(),
        "onnxruntime": {"version": ort.__version__, "providers": model.session.get_providers(),
                        "intra_op_threads": model.intra_op_threads, "inter_op_threads": model.inter_op_threads},
        "data_summary": info.data_summary,
        "training": info.training,
        "evaluation": info.evaluation,
        "service": {"version": service_version, "chunk_seconds": s.chunk_seconds,
                    "chunk_overlap_seconds": s.chunk_overlap_seconds, "max_upload_mb": s.max_upload_mb,
                    "max_duration_seconds": s.max_duration_seconds, "max_channels": s.max_channels,
                    "max_concurrency": s.max_concurrency, "max_queue": s.max_queue,
                    "queue_timeout": s.queue_timeout, "load_seconds": engine.load_seconds,
                    "expected_seconds_per_audio_second": round(engine.costs.rate, 5)},
    }


def create_app(settings: Settings | None = None, configure_logging: bool = True) -> FastAPI:
    settings = settings or Settings()
    if configure_logging:
        setup_logging(settings.log_level)
    metrics = Metrics()
    engine = Engine(settings)
    streams = StreamService(settings, metrics)
    metrics.denoise_active.set_function(lambda: engine.limiter.active)
    metrics.denoise_waiting.set_function(lambda: engine.limiter.waiting)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("starting", extra={"model_path": str(settings.model_path), "max_concurrency": settings.max_concurrency})
        loader = asyncio.create_task(engine.start())

        def _loaded(_: asyncio.Task) -> None:
            metrics.model_ready.set(1 if engine.ready else 0)

        loader.add_done_callback(_loaded)
        stream_loader = asyncio.create_task(asyncio.to_thread(streams.load))  # optional: WS /stream
        try:
            yield
        finally:
            if not loader.done():
                loader.cancel()
            if not stream_loader.done():
                stream_loader.cancel()
            engine.close()
            streams.close()
            log.info("stopped")

    app = FastAPI(
        title="rainclean speech denoiser",
        version=service_version,
        description=("POST a recording of speech in rain or a thunderstorm to `/denoise`, get the clean speech back "
                     "at the same sample rate, channel count, length and level. Errors are JSON: "
                     '`{"error": {"code": ..., "message": ...}}`. When the `API_KEY` environment variable is set, '
                     "every endpoint except `/health` needs `Authorization: Bearer <key>` (the try-it page at `/` and its "
                     "`/static/` assets are open too: the page asks for the key)."),
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.metrics = metrics
    app.state.streams = streams
    install_handlers(app)
    # added innermost first: RequestContext wraps ApiKeyAuth wraps UploadGuard wraps the app
    app.add_middleware(UploadGuard, max_upload_bytes=settings.max_upload_bytes)
    app.add_middleware(ApiKeyAuth, api_key=settings.api_key.get_secret_value() if settings.api_key else None,
                       page_paths=PAGE_PATHS, page_prefixes=PAGE_PREFIXES)
    app.add_middleware(RequestContext, metrics=metrics)

    install_page(app)  # GET /: the try-it page, and its assets under /static/
    install_stream(app, streams)  # WS /stream: real-time denoising (service/stream_endpoint.py)

    @app.get("/health", response_model=Health, tags=["operations"], summary="Liveness (cheap; never needs a key)")
    async def health() -> Health:
        return Health(service_version=service_version, model_state=engine.state)

    @app.get("/ready", response_model=Ready, tags=["operations"], responses=_errors(401, 503),
             summary="Readiness: 200 once the model is loaded and warmed up")
    async def ready() -> Ready:
        model = engine.require_ready()
        return Ready(model_name=model.info.name, model_version=model.info.version)

    @app.get("/model-info", tags=["operations"], responses=_errors(401, 503),
             summary="The model's identity, signal contract, runtime settings and stored evaluation")
    async def model_info() -> JSONResponse:
        return JSONResponse({**model_info_dict(engine), "streaming": streams.describe()})

    @app.get("/metrics", tags=["operations"], responses=_errors(401),
             summary="Prometheus metrics", response_class=Response)
    async def prometheus_metrics() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.post(
        "/denoise",
        tags=["denoise"],
        summary="Denoise an audio file",
        response_class=Response,
        responses={
            200: {"content": {"audio/wav": {}, "audio/flac": {}},
                  "description": "The denoised audio: same sample rate, channels and number of samples as the input. "
                                 "Headers: X-Queue-Time (s waiting for a slot), X-Inference-Time (s decoding, denoising "
                                 "and encoding), X-Processing-Time (the same as X-Inference-Time), X-Model-Version, "
                                 "X-Request-ID."},
            **_errors(400, 401, 413, 415, 422, 503),
        },
    )
    async def denoise(
        request: Request,
        file: UploadFile = File(..., description="The recording: WAV, FLAC, MP3, OGG (Vorbis or Opus) or anything "
                                                 "libsndfile reads, 8-192 kHz, mono or multichannel. AAC/M4A is not "
                                                 "supported (415)."),
        format: Literal["wav", "flac"] = Query("wav", description="Container of the returned audio."),
        attenuation_limit_db: float | None = Query(
            None, ge=0, allow_inf_nan=False,
            description="Strength control: the most, in dB, that the noise is attenuated (some background is "
                        "kept). The output is `(1 - g) * denoised + g * input` with `g = 10^(-X/20)`, mixed at the "
                        "input's sample rate. 0 returns the input unchanged; absent means no limit (full strength)."),
    ) -> Response:
        check_media_type(file.content_type)
        engine.require_ready()  # refuse early: no point reading a big upload we cannot process
        data = await read_upload(file, settings.max_upload_bytes)
        state = request.scope.setdefault("state", {})
        state["upload_bytes"] = len(data)
        result = await engine.denoise(data, format, attenuation_limit_db)
        metrics.audio_seconds.inc(result.duration)
        metrics.processing.observe(result.seconds)
        state.update(audio_seconds=round(result.duration, 3), sample_rate=result.sample_rate,
                     channels=result.channels, processing_seconds=round(result.seconds, 4),
                     queue_seconds=round(result.queue_seconds, 4))
        model = engine.model
        assert model is not None
        return Response(
            content=result.payload,
            media_type=result.media_type,
            headers={
                "X-Queue-Time": f"{result.queue_seconds:.4f}",
                "X-Inference-Time": f"{result.seconds:.4f}",
                "X-Processing-Time": f"{result.seconds:.4f}",
                "X-Model-Version": model.info.version,
                "X-Model-Name": model.info.name,
                "X-Audio-Duration": f"{result.duration:.4f}",
                "Content-Disposition": f'attachment; filename="{_safe_stem(file.filename)}-denoised.{format}"',
            },
        )

    return app
