"""StreamBatcher (denoise_core.stream_batching) with the shipped streaming model: streams whose model
calls are batched together on one thread each get exactly what they get on their own."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from denoise_core.stream_batching import StreamBatcher
from denoise_core.streaming import StreamingDenoiser, StreamingModel

SHIPPED_STREAM_MODEL = Path(__file__).resolve().parents[2] / "models" / "denoiser-stream.onnx"
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def model() -> StreamingModel:
    return StreamingModel(SHIPPED_STREAM_MODEL)


def noisy(seconds: float, seed: int, channels: int, rate: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    tone = 0.2 * np.sin(2 * np.pi * (200 + 40 * seed) * t)
    return (tone[:, None] + 0.05 * rng.standard_normal((t.size, channels))).astype(np.float32)


# (channels, chunk, rate): mono and stereo, blocks of 0 to 4 frames per push, one resampled stream
STREAMS = [(1, 320, 16000), (2, 320, 16000), (1, 256, 16000), (1, 1024, 16000), (2, 480, 16000),
           (1, 100, 16000), (1, 700, 16000), (2, 441, 44100)]


def chunks(x: np.ndarray, size: int) -> list[np.ndarray]:
    return [x[i : i + size] for i in range(0, x.shape[0], size)]


def test_batched_streams_each_equal_their_own_output(model: StreamingModel) -> None:
    inputs = [noisy(1.0, seed, ch, rate) for seed, (ch, _, rate) in enumerate(STREAMS)]
    alone = []
    for x, (ch, size, rate) in zip(inputs, STREAMS):
        den = StreamingDenoiser(model, rate, ch)
        alone.append(np.concatenate([*(den.push(c) for c in chunks(x, size)), den.flush()]))

    gate = threading.Event()
    held = []

    def gated_step(features, valid, state):  # the first call waits: the other streams' pushes queue meanwhile
        if not held:
            held.append(True)
            assert gate.wait(60)
        return model.step(features, valid, state)

    batcher = StreamBatcher(model, max_batch=32, step=gated_step)
    dens = [StreamingDenoiser(model, rate, ch) for ch, _, rate in STREAMS]
    pieces: list[list[np.ndarray]] = [[] for _ in STREAMS]
    rounds = max(len(chunks(x, size)) for x, (_, size, _) in zip(inputs, STREAMS))
    for r in range(rounds + 1):
        futures = {}
        for k, (x, (_, size, _)) in enumerate(zip(inputs, STREAMS)):
            parts = chunks(x, size)
            if r < len(parts):
                futures[k] = batcher.submit(dens[k].push_steps(parts[r]))
            elif r == len(parts):
                futures[k] = batcher.submit(dens[k].flush_steps())
        if r == 0:
            time.sleep(0.2)
            gate.set()
        for k, f in futures.items():
            pieces[k].append(f.result(timeout=60))
    batcher.close()
    for want, got in zip(alone, pieces):
        got = np.concatenate(got)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE)
    assert batcher.rows > batcher.calls  # calls carried several streams' frames
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(dens[0].push_steps(inputs[0][:320]))


def test_errors_reach_their_caller_and_the_worker_goes_on(model: StreamingModel) -> None:
    batcher = StreamBatcher(model, max_batch=4)
    den = StreamingDenoiser(model, 16000, 1)
    with pytest.raises(ValueError, match="expected"):  # a bad push: stereo samples into a mono stream
        batcher.run(den.push_steps(np.zeros((320, 2), np.float32)))
    calls = []

    def failing_step(features, valid, state):
        calls.append(features.shape)
        raise RuntimeError("the model failed")

    broken = StreamBatcher(model, step=failing_step)
    with pytest.raises(RuntimeError, match="the model failed"):
        broken.run(StreamingDenoiser(model).push_steps(np.zeros(1024, np.float32)))
    assert calls
    broken.close()
    x = noisy(0.5, 3, 1)
    want = StreamingDenoiser(model)
    alone = np.concatenate([*(want.push(c) for c in chunks(x, 320)), want.flush()])
    got = [batcher.run(den.push_steps(c)) for c in chunks(x, 320)] + [batcher.run(den.flush_steps())]
    np.testing.assert_allclose(np.concatenate(got), alone, rtol=0, atol=TOLERANCE)
    batcher.close()


def test_max_batch_must_be_positive(model: StreamingModel) -> None:
    with pytest.raises(ValueError, match="max_batch"):
        StreamBatcher(model, max_batch=0)
