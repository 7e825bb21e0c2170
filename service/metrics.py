"""Prometheus metrics, in a registry per app (so several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: paths reported as themselves; anything else is "other" (bounded label cardinality)
KNOWN_PATHS = frozenset({"/denoise", "/health", "/ready", "/model-info", "/metrics", "/docs", "/openapi.json", "/redoc"})


def path_label(path: str) -> str:
    return path if path in KNOWN_PATHS else "other"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("rainclean_http_requests_total", "HTTP requests by path, method and status.",
                                ["path", "method", "status"], registry=r)
        self.errors = Counter("rainclean_http_errors_total", "Error responses by status and error code.",
                              ["status", "code"], registry=r)
        self.duration = Histogram("rainclean_http_request_duration_seconds", "Request wall time.",
                                  ["path"], registry=r,
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        self.in_flight = Gauge("rainclean_http_requests_in_flight", "Requests being handled now.", registry=r)
        self.denoise_active = Gauge("rainclean_denoise_active", "Denoise jobs holding a processing slot.", registry=r)
        self.denoise_waiting = Gauge("rainclean_denoise_waiting", "Denoise jobs waiting for a slot.", registry=r)
        self.audio_seconds = Counter("rainclean_audio_seconds_processed_total",
                                     "Seconds of input audio denoised successfully.", registry=r)
        self.processing = Histogram("rainclean_denoise_processing_seconds",
                                    "Decode + denoise + encode time per request.", registry=r,
                                    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
        self.streams_active = Gauge("rainclean_streams_active", "WebSocket /stream connections holding a stream state.",
                                    registry=r)
        self.stream_audio_seconds = Counter("rainclean_stream_audio_seconds_total",
                                            "Seconds of input audio denoised through /stream.", registry=r)
        self.stream_block_seconds = Histogram("rainclean_stream_block_processing_seconds",
                                              "Processing time of one /stream binary frame (decode, denoise, encode).",
                                              registry=r, buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1))
        self.stream_batch_rows = Histogram("rainclean_stream_batch_rows",
                                           "Stream rows (channels of concurrent streams) per streaming model call.",
                                           registry=r, buckets=(1, 2, 4, 8, 16, 32, 64))
        self.model_ready = Gauge("rainclean_model_ready", "1 once the model is loaded and warmed up.", registry=r)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
