"""Streaming speed: ``python -m service.stream_benchmark [--model FILE.onnx] [--seconds 10] [--chunk-ms 20] [--streams N]``.

Streams noise through one :class:`~denoise_core.streaming.StreamingDenoiser` in ``--chunk-ms`` chunks on one
onnxruntime thread and prints the processing seconds per audio second (per stream) and the number of
real-time streams one core can serve (``1 / (s per audio s)``), plus the per-chunk time (median, p99).
``--streams N`` then runs N streams at once, one thread each, every chunk sent when it is due in real
time, and prints the share of chunks whose answer came before the next chunk was due, and the worst lag.

Without ``--model`` it exports the default-size band network (``BandConfig()``, random weights) with
``training.export_stream`` first, which needs TensorFlow (the training extra).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from denoise_core.streaming import StreamingDenoiser, StreamingModel


def export_default_band(out: Path) -> Path:
    """The default-size band network, random weights, as a streaming ONNX file."""
    import onnx

    from denoise_core.model_file import ModelInfo
    from denoise_core.signal import SignalSpec
    from training.export_stream import to_onnx, write_metadata
    from training.models.bandnet import BandConfig, build_bandnet
    from training.models.bandnet_stream import build_bandnet_stream

    config = BandConfig()
    net = build_bandnet(257, config, complex_mask=True)
    stream = build_bandnet_stream(net, config)
    spec = SignalSpec(output="complex_mask", lookahead_frames=stream.layout.delay)
    model = to_onnx(stream)
    write_metadata(model, ModelInfo(name="band-default-random", version="benchmark", preset="band", signal=spec), stream.layout)
    onnx.save(model, str(out))
    return out


def measure(model: StreamingModel, seconds: float, chunk_ms: float, rate: int = 16000) -> dict[str, float]:
    x = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * rate))).astype(np.float32)
    chunk = max(1, int(round(rate * chunk_ms / 1000)))
    den = StreamingDenoiser(model, rate)
    den.push(x[: chunk * 10])  # warm-up
    den = StreamingDenoiser(model, rate)
    times = []
    for i in range(0, x.shape[0], chunk):
        t0 = time.perf_counter()
        den.push(x[i : i + chunk])
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    den.flush()
    total = sum(times) + time.perf_counter() - t0
    rtf = total / seconds
    return {"audio_seconds": seconds, "chunk_ms": chunk_ms, "seconds_per_audio_second": round(rtf, 5),
            "realtime_streams_per_core": int(1.0 / rtf) if rtf > 0 else 0,
            "chunk_ms_median": round(1000 * float(np.median(times)), 3),
            "chunk_ms_p99": round(1000 * float(np.percentile(times, 99)), 3),
            "latency_ms": model.latency_ms}


def concurrent(model: StreamingModel, streams: int, seconds: float, chunk_ms: float, rate: int = 16000) -> dict[str, float]:
    """``streams`` real-time streams at once: how many chunks were answered before the next was due."""
    import threading

    chunk = max(1, int(round(rate * chunk_ms / 1000)))
    period = chunk / rate
    x = (0.1 * np.random.default_rng(1).standard_normal(int(seconds * rate))).astype(np.float32)
    lags: list[list[float]] = [[] for _ in range(streams)]
    start = time.perf_counter() + 0.5

    def run(k: int) -> None:
        den = StreamingDenoiser(model, rate)
        for n, i in enumerate(range(0, x.shape[0], chunk)):
            due = start + k * period / streams + n * period  # streams spread over one period
            time.sleep(max(0.0, due - time.perf_counter()))
            den.push(x[i : i + chunk])
            lags[k].append(time.perf_counter() - due)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = np.concatenate([np.asarray(v) for v in lags])
    return {"streams": streams, "in_time_share": round(float(np.mean(every < period)), 4),
            "lag_ms_p99": round(1000 * float(np.percentile(every, 99)), 2), "lag_ms_max": round(1000 * float(every.max()), 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m service.stream_benchmark", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=None, help="streaming ONNX file (default: export the default band network)")
    p.add_argument("--seconds", type=float, default=10.0, help="audio to stream (default %(default)s)")
    p.add_argument("--chunk-ms", type=float, default=20.0, help="chunk length (default %(default)s)")
    p.add_argument("--streams", type=int, default=0, help="then run this many real-time streams at once")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.model or export_default_band(Path(tmp) / "band-default-stream.onnx")
        model = StreamingModel(path, intra_op_threads=1)
        result = {"model": model.info.name, "lookahead_frames": model.lookahead, **measure(model, args.seconds, args.chunk_ms)}
        print(json.dumps(result))
        print(f"{result['seconds_per_audio_second']:.4f} s per audio second per stream ({args.chunk_ms:g}-ms chunks, one thread); "
              f"at most {result['realtime_streams_per_core']} real-time streams per core; latency {model.latency_ms:g} ms")
        if args.streams:
            both = concurrent(model, args.streams, args.seconds, args.chunk_ms)
            print(json.dumps(both))
            print(f"{args.streams} real-time streams at once: {100 * both['in_time_share']:.1f} % of chunks answered before the "
                  f"next was due; lag p99 {both['lag_ms_p99']:g} ms, max {both['lag_ms_max']:g} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
