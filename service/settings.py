"""Service configuration: one typed settings class, read from environment variables.

Variables have no prefix (``PORT``, ``MODEL_PATH``, ...), matching how container
platforms pass ``PORT``; names are case-insensitive. A ``.env`` file is not read.

==========================  ==========================================  ===========
variable                    meaning                                     default
==========================  ==========================================  ===========
HOST                        bind address                                0.0.0.0
PORT                        TCP port                                    8000
MODEL_PATH                  ONNX model file                             <repo>/models/denoiser.onnx
MAX_UPLOAD_MB               largest accepted upload (MiB)               50
MAX_DURATION_SECONDS        longest accepted audio (seconds)            600
MAX_CHANNELS                most channels accepted                      8
MAX_CONCURRENCY             denoise requests processed at once          2
MAX_QUEUE                   most requests waiting for a slot            128
QUEUE_TIMEOUT               longest expected wait for a slot (s);       10
                            beyond it a request gets 503 at once
SHUTDOWN_TIMEOUT            on SIGTERM, seconds allowed for the         60
                            requests in flight to finish
ORT_INTRA_OP_THREADS        onnxruntime intra-op threads (0 = auto:     0
                            CPU count / MAX_CONCURRENCY)
ORT_INTER_OP_THREADS        onnxruntime inter-op threads                1
ORT_MEMORY_PATTERN          onnxruntime memory patterns (planned per    false
                            input shape: faster repeats of one length,
                            more memory when lengths vary)
CHUNK_SECONDS               chunk length for long audio (seconds)       10
CHUNK_OVERLAP_SECONDS       cross-fade between chunks (seconds)         0.25
LOG_LEVEL                   DEBUG, INFO, WARNING, ERROR                 INFO
API_KEY                     when set, every endpoint but /health needs  (unset)
                            ``Authorization: Bearer <key>`` (the page
                            at / and its /static/ assets stay open)
STREAM_MODEL_PATH           streaming ONNX model for ``WS /stream``     <repo>/models/denoiser-stream.onnx
                            (missing: /stream closes, /denoise works)
MAX_STREAMS                 concurrent ``/stream`` connections          20
STREAM_IDLE_TIMEOUT         seconds without a message before a stream   30
                            is closed
STREAM_MAX_BATCH            most stream rows in one model call (the     32
                            concurrent frames of all streams run
                            together; 1 = each stream on its own)
==========================  ==========================================  ===========
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from denoise_core.signal import CHUNK_OVERLAP_SECONDS, CHUNK_SECONDS

#: the shipped model, resolved from this package so any working directory works
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent.parent / "models" / "denoiser.onnx"
#: the streaming export (training.export_stream)
DEFAULT_STREAM_MODEL_PATH = DEFAULT_MODEL_PATH.with_name("denoiser-stream.onnx")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    host: str = "0.0.0.0"
    port: int = Field(8000, ge=1, le=65535)
    model_path: Path = DEFAULT_MODEL_PATH
    max_upload_mb: float = Field(50.0, gt=0)
    max_duration_seconds: float = Field(600.0, gt=0)
    max_channels: int = Field(8, ge=1)
    max_concurrency: int = Field(2, ge=1)
    max_queue: int = Field(128, ge=0)
    queue_timeout: float = Field(10.0, ge=0)
    shutdown_timeout: float = Field(60.0, gt=0)
    ort_intra_op_threads: int = Field(0, ge=0)
    ort_inter_op_threads: int = Field(1, ge=1)
    ort_memory_pattern: bool = False
    chunk_seconds: float = Field(CHUNK_SECONDS, gt=0)
    chunk_overlap_seconds: float = Field(CHUNK_OVERLAP_SECONDS, ge=0)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    api_key: SecretStr | None = None
    stream_model_path: Path = DEFAULT_STREAM_MODEL_PATH
    max_streams: int = Field(20, ge=0)
    stream_idle_timeout: float = Field(30.0, gt=0)
    stream_max_batch: int = Field(32, ge=1)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_key_is_none(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _check_chunks(self) -> "Settings":
        if self.chunk_overlap_seconds >= self.chunk_seconds:
            raise ValueError("CHUNK_OVERLAP_SECONDS must be shorter than CHUNK_SECONDS")
        return self

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    @property
    def intra_op_threads(self) -> int:
        """Resolved onnxruntime intra-op threads: the CPUs shared by the concurrent requests."""
        if self.ort_intra_op_threads > 0:
            return self.ort_intra_op_threads
        return max(1, (os.cpu_count() or 1) // self.max_concurrency)
