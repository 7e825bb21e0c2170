"""Processing speed through the service's own code path (not a test).

    python -m service.benchmark [--model PATH] [--repeats 5] [--durations 5 60] [--chunks 30 15 10] [--against PATH ...]

Starts the real app with FastAPI's TestClient (lifespan, model load and warm-up
included), POSTs a synthetic 16-bit mono WAV of speech-like noise at the model's
sample rate for each duration, one request at a time, and prints the median
wall-clock seconds and the real-time factor (processing seconds per audio second).
Beside it, the model alone: the seconds onnxruntime spends in the network (one thread)
per audio second, timed inside the same denoise path. ``--chunks`` then times the network
alone at several chunk lengths, taking turns, which is how ``CHUNK_SECONDS`` was chosen.
``--against`` times the network alone of the served model and of other model files, taking
turns, so that a machine whose speed drifts between commands still ranks them fairly.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

if TYPE_CHECKING:
    from denoise_core.model_file import OnnxModel


def synthetic_wav(seconds: float, sample_rate: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    voice = 0.2 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    rain = 0.05 * rng.standard_normal(n)
    buf = io.BytesIO()
    sf.write(buf, (voice + rain).astype(np.float32), sample_rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def _network_timer(model_path: Path) -> tuple["OnnxModel", list[float]]:
    """The model on one onnxruntime thread, its ``predict`` adding its seconds to the returned list's first item."""
    from denoise_core.model_file import OnnxModel

    model = OnnxModel(model_path, intra_op_threads=1, inter_op_threads=1)
    spent = [0.0]
    predict = model.predict

    def timed(batch: np.ndarray) -> np.ndarray:
        t0 = time.perf_counter()
        out = predict(batch)
        spent[0] += time.perf_counter() - t0
        return out

    model.predict = timed  # type: ignore[method-assign]
    return model, spent


def _network_seconds_in_turns(cases: list[tuple["OnnxModel", list[float], float]], body: bytes, overlap: float,
                              repeats: int) -> list[float]:
    """Median seconds in the network per audio second for each (model, its timer, chunk length)
    case, the cases taking turns in every repeat so that a drifting machine affects all alike."""
    audio, sr = sf.read(io.BytesIO(body), dtype="float32", always_2d=True)
    runs: list[list[float]] = [[] for _ in cases]
    for model, _, chunk in cases:
        model.denoise(audio, sr, chunk, overlap)  # warm-up
    for _ in range(repeats):
        for (model, spent, chunk), times in zip(cases, runs):
            spent[0] = 0.0
            model.denoise(audio, sr, chunk, overlap)
            times.append(spent[0])
    return [statistics.median(r) / (audio.shape[0] / sr) for r in runs]


def network_seconds_by_chunk(model_path: Path, body: bytes, chunks: list[float], overlap: float, repeats: int) -> dict[float, float]:
    """Median seconds in the network (one onnxruntime thread) per audio second for each chunk
    length, the chunk lengths taking turns."""
    model, spent = _network_timer(model_path)
    return dict(zip(chunks, _network_seconds_in_turns([(model, spent, c) for c in chunks], body, overlap, repeats)))


def network_seconds_in_turns(model_paths: list[Path], body: bytes, chunk: float, overlap: float, repeats: int) -> list[float]:
    """Median seconds in the network (one onnxruntime thread) per audio second for each model
    file, the files taking turns."""
    return _network_seconds_in_turns([(*_network_timer(path), chunk) for path in model_paths], body, overlap, repeats)


def model_seconds_per_audio_second(model_path: Path, body: bytes, settings: object, repeats: int) -> float:
    """Median seconds in the network per audio second, one onnxruntime thread, over ``repeats`` runs."""
    return network_seconds_by_chunk(model_path, body, [settings.chunk_seconds], settings.chunk_overlap_seconds, repeats)[settings.chunk_seconds]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", type=Path, default=None, help="ONNX model (default: MODEL_PATH or the shipped model)")
    p.add_argument("--durations", type=float, nargs="+", default=[5.0, 60.0], help="audio lengths in seconds")
    p.add_argument("--repeats", type=int, default=5, help="requests per duration (median reported)")
    p.add_argument("--chunks", type=float, nargs="+", default=None, metavar="SECONDS",
                   help="then time the network alone at each of these chunk lengths (taking turns), for every duration")
    p.add_argument("--against", type=Path, nargs="+", default=None, metavar="PATH",
                   help="then time the network alone of the served model and of these model files, taking turns, for every duration")
    args = p.parse_args(argv)
    missing = [str(path) for path in args.against or [] if not path.is_file()]
    if missing:
        p.error(f"--against: no such model file: {', '.join(missing)}")
    if args.model is not None:
        os.environ["MODEL_PATH"] = str(args.model)
    os.environ.setdefault("LOG_LEVEL", "WARNING")

    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    settings = Settings()
    app = create_app(settings)
    with TestClient(app) as client:
        deadline = time.monotonic() + 120
        while (r := client.get("/ready")).status_code != 200:
            if r.json()["error"]["code"] != "not_ready" or time.monotonic() > deadline:
                print(f"model not ready: {r.json()['error']['message']}")
                return 1
            time.sleep(0.05)
        info = client.get("/model-info").json()
        sr = info["sample_rate"]
        print(f"model {info['name']} {info['version']} ({info['file']}, sha256 {info['sha256'][:12]}), "
              f"onnxruntime {info['onnxruntime']['version']}, intra-op threads {info['onnxruntime']['intra_op_threads']}, "
              f"cpus {os.cpu_count()}, chunk {settings.chunk_seconds:g} s")
        print(f"{'audio s':>8} {'median s':>9} {'min s':>8} {'server s':>9} {'RTF (s/s)':>10} {'model s/s':>10}  "
              "(RTF: service path, processing seconds per audio second; model: the network alone, one thread)")
        for seconds in args.durations:
            body = synthetic_wav(seconds, sr)
            walls, server = [], []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                r = client.post("/denoise", files={"file": ("bench.wav", body, "audio/wav")})
                walls.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    print(f"request failed: {r.status_code} {r.text[:200]}")
                    return 1
                server.append(float(r.headers["X-Processing-Time"]))
            med = statistics.median(walls)
            network = model_seconds_per_audio_second(Path(settings.model_path), body, settings, args.repeats)
            print(f"{seconds:8.1f} {med:9.3f} {min(walls):8.3f} {statistics.median(server):9.3f} {med / seconds:10.4f} {network:10.4f}")
        if args.chunks:
            print(f"network alone, one thread, seconds per audio second by chunk length (overlap {settings.chunk_overlap_seconds:g} s)")
            print(f"{'audio s':>8}" + "".join(f" {f'chunk {c:g} s':>11}" for c in args.chunks))
            for seconds in args.durations:
                by_chunk = network_seconds_by_chunk(Path(settings.model_path), synthetic_wav(seconds, sr), args.chunks,
                                                    settings.chunk_overlap_seconds, args.repeats)
                print(f"{seconds:8.1f}" + "".join(f" {by_chunk[c]:11.4f}" for c in args.chunks), flush=True)
        if args.against:
            paths = [Path(settings.model_path), *args.against]
            print(f"network alone, one thread, model files taking turns (chunk {settings.chunk_seconds:g} s; "
                  "ratio: seconds per audio second over the served model's)")
            print(f"{'audio s':>8} {'model s/s':>10} {'ratio':>7}  file")
            for seconds in args.durations:
                figures = network_seconds_in_turns(paths, synthetic_wav(seconds, sr), settings.chunk_seconds,
                                                   settings.chunk_overlap_seconds, args.repeats)
                for path, figure in zip(paths, figures):
                    print(f"{seconds:8.1f} {figure:10.4f} {figure / figures[0]:7.3f}  {path}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
