"""Load benchmark on loopback: ``python -m service.loadtest [--clients 1 2 4 16 64] [--seconds 20] [--runs N] [--soak N]``.

Starts ``python -m service`` on a free 127.0.0.1 port (the environment's settings apply),
reports the time from launch to ``/ready`` and the idle RSS, then for each client count
runs that many closed-loop clients posting a 5-s clip for a fixed time and prints
throughput (audio seconds per second), p50/p99 latency, the latency bound
``1.3 x clients / requests per second``, the tail ratio ``p99 / (clients / requests per
second)`` (at most 1.3 meets the bound), status counts and the server's RSS. ``--runs N``
repeats the sweep N times on the same server and ends with each client count's range over
the runs (throughput, tail ratio, scaling over one client). ``--baseline`` first runs the
same closed loop inside this process with no HTTP: ``MAX_CONCURRENCY`` threads call the
model's code path directly, so the table shows how much of the spread is the machine's own.
``--soak N``
then sends N requests of mixed lengths, rates and channel counts and prints the RSS after
warm-up and at the end; ``--long-upload`` sends one 10-minute recording and prints the
RSS before, at the peak and after. Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import httpx
import numpy as np
import soundfile as sf

from service.memory import rss_bytes

ROOT = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


def wav_bytes(seconds: float, sample_rate: int = 16000, channels: int = 1, seed: int = 0) -> bytes:
    """A noisy harmonic test signal as 16-bit WAV."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    voice = sum(np.sin(2 * np.pi * 190 * k * t) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2.5 * t) ** 2)
    audio = 0.1 * voice[:, None] + 0.03 * rng.standard_normal((t.size, channels))
    buf = io.BytesIO()
    sf.write(buf, audio.astype(np.float32), sample_rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """The service in a child process."""

    proc: subprocess.Popen[bytes]
    base: str
    ready_seconds: float

    @classmethod
    def start(cls, timeout: float = 120.0) -> "Server":
        port = free_port()
        env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING")}
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "service"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        while time.perf_counter() - started < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"the service exited with status {proc.returncode}")
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    return cls(proc, base, time.perf_counter() - started)
            except httpx.TransportError:
                pass
            time.sleep(0.02)
        proc.kill()
        raise RuntimeError("the service did not become ready")

    def rss(self) -> float:
        return rss_bytes(self.proc.pid) / MB

    def peak_rss(self) -> float:
        try:
            with open(f"/proc/{self.proc.pid}/status") as fh:
                return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmHWM:"))
        except (OSError, StopIteration):
            return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@dataclass
class Phase:
    clients: int
    seconds: float
    audio_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def throughput(self) -> float:
        """Audio seconds served per second."""
        return self.audio_seconds / self.seconds

    @property
    def rps(self) -> float:
        return self.statuses.get(200, 0) / self.seconds

    def p99(self) -> float:
        return float(np.percentile(self.latencies, 99)) if self.latencies else float("nan")

    def tail_ratio(self) -> float:
        """p99 latency over the mean latency that Little's law gives (clients / requests per second)."""
        return self.p99() * self.rps / self.clients if self.rps else float("nan")

    def row(self, rss_mb: float) -> str:
        lat = np.array(self.latencies) if self.latencies else np.array([np.nan])
        bound = 1.3 * self.clients / self.rps if self.rps else float("nan")
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(self.statuses.items()))
        return (f"| {self.clients} | {self.throughput:.1f} | {self.rps:.1f} | {1000 * np.percentile(lat, 50):.0f} | "
                f"{1000 * self.p99():.0f} | {1000 * bound:.0f} | {self.tail_ratio():.2f} | {codes} | {rss_mb:.0f} |")


def header(rss_of: str = "server") -> str:
    return ("| clients | audio s/s | requests/s | p50 ms | p99 ms | 1.3 x clients / rps, ms | p99 / (clients / rps) "
            f"| statuses | {rss_of} RSS MB |\n|---|---|---|---|---|---|---|---|---|")


def summary(runs: list[list[Phase]]) -> list[str]:
    """Per client count, the min-max over runs of throughput, tail ratio and scaling over one client."""
    lines = ["| clients | audio s/s | p99 / (clients / rps) | runs with ratio <= 1.3 | x one client |", "|---|---|---|---|---|"]
    for i, clients in enumerate(p.clients for p in runs[0]):
        phases = [run[i] for run in runs]
        tput = [p.throughput for p in phases]
        ratio = [p.tail_ratio() for p in phases]
        one = [run[0].throughput for run in runs] if runs[0][0].clients == 1 else []
        scale = f"{min(t / o for t, o in zip(tput, one)):.2f}-{max(t / o for t, o in zip(tput, one)):.2f}" if one else "-"
        lines.append(f"| {clients} | {min(tput):.1f}-{max(tput):.1f} | {min(ratio):.2f}-{max(ratio):.2f} | "
                     f"{sum(r <= 1.3 for r in ratio)} of {len(ratio)} | {scale} |")
    return lines


async def closed_loop(base: str, clients: int, seconds: float, body: bytes, clip_seconds: float) -> Phase:
    """``clients`` workers each post, wait for the answer, and post again until time is up."""
    phase = Phase(clients, seconds)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = await client.post("/denoise", files={"file": ("clip.wav", body, "audio/wav")})
                phase.statuses[r.status_code] += 1
                if r.status_code == 200:
                    phase.latencies.append(time.perf_counter() - t0)
                    phase.audio_seconds += clip_seconds
                elif r.status_code == 503:
                    await asyncio.sleep(min(float(r.headers.get("retry-after", 1)), 1.0))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        phase.seconds = time.perf_counter() - started
    return phase


def model_call(body: bytes) -> tuple[Callable[[], object], int]:
    """The service's code path for one upload, called directly (model loaded and warmed up as
    the environment's settings say), and the number of worker threads the service would use."""
    from denoise_core.model_file import OnnxModel
    from service.inference import denoise_bytes
    from service.memory import limit_malloc_arenas
    from service.settings import Settings

    limit_malloc_arenas()
    settings = Settings()
    model = OnnxModel(Path(settings.model_path), settings.intra_op_threads, settings.ort_inter_op_threads,
                      settings.ort_memory_pattern)
    call = partial(denoise_bytes, model, body, settings)
    call()
    return call, settings.max_concurrency


async def in_process_loop(call: Callable[[], object], workers: int, clients: int, seconds: float,
                          clip_seconds: float) -> Phase:
    """The closed loop without the service: ``clients`` coroutines hand ``call`` to ``workers`` threads."""
    phase = Phase(clients, seconds)
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                await loop.run_in_executor(pool, call)
                phase.statuses[200] += 1
                phase.latencies.append(time.perf_counter() - t0)
                phase.audio_seconds += clip_seconds

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        phase.seconds = time.perf_counter() - started
    return phase


async def soak(base: str, requests: int, concurrency: int = 4) -> Counter[int]:
    """``requests`` posts of mixed lengths (0.3-4 s), rates (8-48 kHz) and channel counts (1-2),
    ``concurrency`` at a time; returns the status counts."""
    rng = np.random.default_rng(1)
    bodies = [wav_bytes(float(rng.uniform(0.3, 4.0)), int(rng.choice([8000, 16000, 22050, 44100, 48000])),
                        int(rng.integers(1, 3)), seed=i) for i in range(24)]
    statuses: Counter[int] = Counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                r = await client.post("/denoise", files={"file": ("s.wav", bodies[i % len(bodies)], "audio/wav")})
                statuses[r.status_code] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m service.loadtest", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 16, 64])
    p.add_argument("--seconds", type=float, default=20.0, help="duration of each client-count phase")
    p.add_argument("--clip-seconds", type=float, default=5.0)
    p.add_argument("--runs", type=int, default=1, help="repeat the client sweep N times and summarise the spread")
    p.add_argument("--baseline", action="store_true", help="first run the same loop in this process, without HTTP")
    p.add_argument("--soak", type=int, default=0, metavar="N", help="then send N mixed requests and report memory growth")
    p.add_argument("--long-upload", action="store_true", help="then send one 10-minute recording and report memory")
    args = p.parse_args(argv)
    body = wav_bytes(args.clip_seconds)
    if args.baseline:
        print(f"baseline: the closed loop in this process, no HTTP; {args.clip_seconds:g}-s clips, {args.seconds:g} s per row"
              f"\n\n{header('load-test process')}")
        call, workers = model_call(body)
        for clients in args.clients:
            phase = asyncio.run(in_process_loop(call, workers, clients, args.seconds, args.clip_seconds))
            print(phase.row(rss_bytes() / MB), flush=True)
        print()
    server = Server.start()
    try:
        time.sleep(1.0)
        print(f"start to /ready: {server.ready_seconds:.2f} s; idle RSS: {server.rss():.0f} MB")
        runs: list[list[Phase]] = []
        for run in range(args.runs):
            label = f", run {run + 1} of {args.runs}" if args.runs > 1 else ""
            print(f"\n{args.clip_seconds:g}-s clips, closed loop, {args.seconds:g} s per row{label}\n\n{header()}")
            runs.append([])
            for clients in args.clients:
                phase = asyncio.run(closed_loop(server.base, clients, args.seconds, body, args.clip_seconds))
                runs[-1].append(phase)
                print(phase.row(server.rss()), flush=True)
        if args.runs > 1:
            print(f"\nover {args.runs} runs (min-max)\n")
            print("\n".join(summary(runs)))
        print(f"\npeak RSS so far: {server.peak_rss():.0f} MB")
        if args.soak:
            warm = max(1, args.soak // 10)
            asyncio.run(soak(server.base, warm))
            after_warmup = server.rss()
            t0 = time.perf_counter()
            statuses = asyncio.run(soak(server.base, args.soak - warm))
            end = server.rss()
            print(f"\nsoak: {args.soak} requests ({warm} warm-up) in {time.perf_counter() - t0:.0f} s, statuses "
                  f"{dict(sorted(statuses.items()))}; RSS after warm-up {after_warmup:.0f} MB, at the end {end:.0f} MB "
                  f"({100 * (end / after_warmup - 1):+.1f} %)")
        if args.long_upload:
            before = server.rss()
            r = httpx.post(f"{server.base}/denoise", files={"file": ("long.wav", wav_bytes(600.0, 16000, 1), "audio/wav")}, timeout=600)
            time.sleep(1.0)
            print(f"\n10-minute upload: status {r.status_code}; RSS before {before:.0f} MB, peak {server.peak_rss():.0f} MB, "
                  f"after {server.rss():.0f} MB")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
