"""Streaming speed: ``python -m service.stream_benchmark [--model FILE.onnx] [--seconds 10] [--chunk-ms 20] [--streams N]``.

Streams noise through one :class:`~denoise_core.streaming.StreamingDenoiser` in ``--chunk-ms`` chunks on one
onnxruntime thread and prints the processing seconds per audio second (per stream) and the number of
real-time streams one core can serve (``1 / (s per audio s)``), plus the per-chunk time (median, p99).

``--streams N`` then runs N streams at once on the service's set-up: every push on one
:class:`~denoise_core.stream_batching.StreamBatcher` thread, model calls batched across streams
(``--max-batch``, the ``STREAM_MAX_BATCH`` default; 1 = no batching). It prints

- at full speed (every stream pushing as fast as it can): the process CPU seconds per audio second
  per stream, and so the real-time streams one core can serve;
- in real time (every chunk sent when it is due): the share of chunks answered before the next was
  due, the worst lag, the CPU per audio second per stream and the mean rows per model call.

Without ``--model`` it exports the default-size band network (``BandConfig()``, random weights) with
``training.export_stream`` first, which needs TensorFlow (the training extra).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from denoise_core.stream_batching import StreamBatcher
from denoise_core.streaming import StreamingDenoiser, StreamingModel
from service.settings import Settings


def export_default_band(out: Path) -> Path:
    """The default-size band network, random weights, as a streaming ONNX file."""
    import onnx

    from denoise_core.model_file import ModelInfo
    from denoise_core.signal import SignalSpec
    from training.export_stream import streaming_form, to_onnx, write_metadata
    from training.models.bandnet import BandConfig, build_bandnet

    config = BandConfig()
    net = build_bandnet(257, config, complex_mask=True)
    stream = streaming_form(net, config)
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
    rtf = round(total / seconds, 5)  # streams per core follow from the printed figure
    return {"audio_seconds": seconds, "chunk_ms": chunk_ms, "seconds_per_audio_second": rtf,
            "realtime_streams_per_core": int(1.0 / rtf) if rtf > 0 else 0,
            "chunk_ms_median": round(1000 * float(np.median(times)), 3),
            "chunk_ms_p99": round(1000 * float(np.percentile(times, 99)), 3),
            "latency_ms": model.latency_ms}


def _run_streams(model: StreamingModel, streams: int, seconds: float, chunk_ms: float, max_batch: int,
                 realtime: bool, rate: int = 16000) -> dict[str, float]:
    """``streams`` streams at once through one :class:`StreamBatcher`, driven as the service drives
    them: one asyncio task per stream awaiting each push."""
    chunk = max(1, int(round(rate * chunk_ms / 1000)))
    period = chunk / rate
    x = (0.1 * np.random.default_rng(1).standard_normal(int(seconds * rate))).astype(np.float32)
    batcher = StreamBatcher(model, max_batch)
    for _ in range(3):  # warm-up: a session's first calls are slower
        batcher.run(StreamingDenoiser(model, rate).push_steps(x[: chunk * 10]))
    lags: list[list[float]] = [[] for _ in range(streams)]

    async def run(k: int, start: float) -> None:
        den = StreamingDenoiser(model, rate)
        for n, i in enumerate(range(0, x.shape[0], chunk)):
            due = start + k * period / streams + n * period  # streams spread over one period
            if realtime:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await asyncio.wrap_future(batcher.submit(den.push_steps(x[i : i + chunk])))
            lags[k].append(time.perf_counter() - due)

    async def every() -> None:
        start = time.perf_counter() + 0.1
        await asyncio.gather(*(run(k, start) for k in range(streams)))

    calls, rows = batcher.calls, batcher.rows
    cpu0, wall0 = time.process_time(), time.perf_counter()
    asyncio.run(every())
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    calls, rows = batcher.calls - calls, batcher.rows - rows
    batcher.close()
    cpu_rate = round(cpu / (streams * seconds), 5)  # streams per core follow from the printed figure
    result = {"streams": streams, "max_batch": max_batch, "realtime": realtime,
              "cpu_seconds_per_audio_second_per_stream": cpu_rate,
              "realtime_streams_per_core": int(1.0 / cpu_rate) if cpu_rate > 0 else 0,
              "wall_seconds": round(wall, 2), "mean_rows_per_call": round(rows / max(1, calls), 2)}
    if realtime:
        lag = np.concatenate([np.asarray(v) for v in lags])
        result.update(in_time_share=round(float(np.mean(lag < period)), 4),
                      lag_ms_p99=round(1000 * float(np.percentile(lag, 99)), 2),
                      lag_ms_max=round(1000 * float(lag.max()), 2))
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m service.stream_benchmark", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=None, help="streaming ONNX file (default: export the default band network)")
    p.add_argument("--seconds", type=float, default=10.0, help="audio to stream (default %(default)s)")
    p.add_argument("--chunk-ms", type=float, default=20.0, help="chunk length (default %(default)s)")
    p.add_argument("--streams", type=int, default=0, help="then run this many streams at once (full speed, then real time)")
    p.add_argument("--max-batch", type=int, default=Settings.model_fields["stream_max_batch"].default,
                   help="most stream rows per model call with --streams (default %(default)s, STREAM_MAX_BATCH; 1 = no batching)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.model or export_default_band(Path(tmp) / "band-default-stream.onnx")
        model = StreamingModel(path, intra_op_threads=1)
        result = {"model": model.info.name, "lookahead_frames": model.lookahead, **measure(model, args.seconds, args.chunk_ms)}
        print(json.dumps(result))
        print(f"{result['seconds_per_audio_second']:.4f} s per audio second per stream ({args.chunk_ms:g}-ms chunks, one thread); "
              f"at most {result['realtime_streams_per_core']} real-time streams per core; latency {model.latency_ms:g} ms")
        if args.streams:
            fast = _run_streams(model, args.streams, args.seconds, args.chunk_ms, args.max_batch, realtime=False)
            print(json.dumps(fast))
            print(f"{args.streams} streams at full speed, max batch {args.max_batch}: "
                  f"{fast['cpu_seconds_per_audio_second_per_stream']:.4f} CPU s per audio second per stream; "
                  f"at most {fast['realtime_streams_per_core']} real-time streams per core; "
                  f"{fast['mean_rows_per_call']:g} rows per model call")
            live = _run_streams(model, args.streams, args.seconds, args.chunk_ms, args.max_batch, realtime=True)
            print(json.dumps(live))
            print(f"{args.streams} real-time streams at once, max batch {args.max_batch}: {100 * live['in_time_share']:.1f} % of "
                  f"chunks answered before the next was due; lag p99 {live['lag_ms_p99']:g} ms, max {live['lag_ms_max']:g} ms; "
                  f"{live['cpu_seconds_per_audio_second_per_stream']:.4f} CPU s per audio second per stream; "
                  f"{live['mean_rows_per_call']:g} rows per model call")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
