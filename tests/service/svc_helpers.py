"""Helpers and fixtures for the service tests: tiny ONNX models with full metadata, the real app, audio."""

from __future__ import annotations

import io
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from onnx import TensorProto, helper, numpy_helper

from denoise_core.model_file import INPUT_NAME, OUTPUT_NAME, ModelInfo
from denoise_core.signal import SignalSpec
from service.app import create_app
from service.settings import Settings
from tests.onnx_fixtures import make_constant_mask_model, save_model

SPEC = SignalSpec(output="mask", frame_multiple=4)


def make_sigmoid_mask_model(path: Path, spec: SignalSpec = SPEC) -> Path:
    """A mask that depends on the input (sigmoid of scaled features): chunking can show."""
    x = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", spec.n_freq, "frames", 1])
    y = helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", spec.n_freq, "frames", 1])
    k = numpy_helper.from_array(np.array(4.0, dtype=np.float32), "k")
    b = numpy_helper.from_array(np.array(-6.0, dtype=np.float32), "b")
    nodes = [helper.make_node("Mul", [INPUT_NAME, "k"], ["scaled"]),
             helper.make_node("Add", ["scaled", "b"], ["shifted"]),
             helper.make_node("Sigmoid", ["shifted"], [OUTPUT_NAME])]
    model = helper.make_model(helper.make_graph(nodes, "sigmoid", [x], [y], initializer=[k, b]),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return save_model(model, ModelInfo(name="sigmoid-mask", version="0.0.1-test", preset="test", signal=spec), path)


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    return {
        "passthrough": make_constant_mask_model(d / "passthrough.onnx", SPEC, gain=1.0),
        "half": make_constant_mask_model(d / "half.onnx", SPEC, gain=0.5, name="half-gain"),
        "sigmoid": make_sigmoid_mask_model(d / "sigmoid.onnx"),
    }


def settings_for(model: Path, **overrides: object) -> Settings:
    return Settings(model_path=model, log_level="WARNING", ort_intra_op_threads=1, **overrides)


def wait_ready(client: TestClient, headers: dict[str, str] | None = None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get("/ready", headers=headers)
        if r.status_code == 200:
            return
        assert r.json()["error"]["code"] == "not_ready", r.json()
        assert time.monotonic() < deadline, "model did not become ready"
        time.sleep(0.02)


@contextmanager
def running_app(model: Path, wait: bool = True, headers: dict[str, str] | None = None,
                **overrides: object) -> Iterator[TestClient]:
    app = create_app(settings_for(model, **overrides), configure_logging=False)
    with TestClient(app) as client:
        if wait:
            wait_ready(client, headers)
        yield client


@pytest.fixture(scope="module")
def client(models: dict[str, Path]) -> Iterator[TestClient]:
    with running_app(models["passthrough"], max_upload_mb=1.0, max_duration_seconds=20.0) as c:
        yield c


# ------------------------------------------------------------------ audio helpers
def tone(freq: float, sr: int, seconds: float = 1.0, channels: int = 1, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    cols = [amp * (0.5 + 0.5 * (c % 2 == 0)) * np.sin(2 * np.pi * freq * (1 + 0.25 * c) * t) for c in range(channels)]
    return np.stack(cols, axis=1).astype(np.float32)


def encode(audio: np.ndarray, sr: int, fmt: str = "WAV", subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, audio, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def decode(data: bytes) -> tuple[np.ndarray, int, sf._SoundFileInfo]:
    audio, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return audio, sr, sf.info(io.BytesIO(data))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
