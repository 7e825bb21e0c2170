"""The measuring commands run and print their tables (tiny model, bounded time; loopback only)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], model: Path) -> str:
    env = {**os.environ, "MODEL_PATH": str(model), "LOG_LEVEL": "WARNING", "ORT_INTRA_OP_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.stdout


def test_benchmark_prints_the_service_path_and_the_model_alone(models) -> None:
    out = run(["service.benchmark", "--durations", "1", "2", "--repeats", "1"], models["passthrough"])
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert [float(r[0]) for r in rows] == [1.0, 2.0], out
    for r in rows:
        rtf, model_rtf = float(r[4]), float(r[5])
        assert 0 < model_rtf < rtf  # the network is part of the service path


def test_benchmark_times_the_network_at_each_chunk_length(models) -> None:
    out = run(["service.benchmark", "--durations", "3", "--repeats", "5", "--chunks", "3", "1.5"], models["passthrough"])
    table = out.split("by chunk length")[1]
    assert "chunk 3 s" in table and "chunk 1.5 s" in table
    rows = [line.split() for line in table.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 1 and float(rows[0][0]) == 3.0, out
    whole, chunked = float(rows[0][1]), float(rows[0][2])
    assert whole > 0 and chunked > 0, out  # each chunk length was timed (their order is the machine's, not asserted)


def test_benchmark_times_other_model_files_in_turns_with_the_served_one(models) -> None:
    out = run(["service.benchmark", "--durations", "1", "2", "--repeats", "3", "--against", str(models["half"]), str(models["sigmoid"])],
              models["passthrough"])
    table = out.split("model files taking turns")[1]
    rows = [line.split() for line in table.splitlines() if line.strip()[:1].isdigit()]
    assert [(float(r[0]), Path(r[3]).name) for r in rows] == [
        (seconds, name) for seconds in (1.0, 2.0) for name in ("passthrough.onnx", "half.onnx", "sigmoid.onnx")], out
    for first in (0, 3):
        served = float(rows[first][1])
        assert served > 0 and float(rows[first][2]) == 1.0, out
        for r in rows[first + 1:first + 3]:
            assert float(r[1]) > 0
            # the ratio is computed before rounding: allow the printed figures' rounding
            assert abs(float(r[2]) - float(r[1]) / served) <= 0.0005 / served + 0.0005, r


def test_benchmark_refuses_a_missing_model_file_to_compare_with(models, tmp_path: Path) -> None:
    env = {**os.environ, "MODEL_PATH": str(models["passthrough"]), "LOG_LEVEL": "WARNING"}
    proc = subprocess.run([sys.executable, "-m", "service.benchmark", "--against", str(tmp_path / "absent.onnx")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no such model file" in proc.stderr and "absent.onnx" in proc.stderr, proc.stderr


def test_loadtest_baseline_runs_the_same_loop_without_the_service(models) -> None:
    out = run(["service.loadtest", "--clients", "1", "2", "--seconds", "1", "--clip-seconds", "1", "--baseline"],
              models["passthrough"])
    baseline, served = out.split("start to /ready:")
    assert baseline.startswith("baseline: the closed loop in this process, no HTTP")
    for table in (baseline, served):
        rows = [line.strip("|").split("|") for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
        assert [int(r[0]) for r in rows] == [1, 2], out
        assert all(float(r[1]) > 0 and float(r[6]) > 0 for r in rows)


def test_loadtest_prints_one_row_per_client_count(models) -> None:
    out = run(["service.loadtest", "--clients", "1", "2", "--seconds", "1", "--clip-seconds", "1", "--runs", "2"],
              models["passthrough"])
    assert "start to /ready:" in out and "idle RSS:" in out
    table, summary = out.split("over 2 runs (min-max)")
    rows = [line.strip("|").split("|") for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [int(r[0]) for r in rows] == [1, 2, 1, 2], out
    for r in rows:
        assert float(r[1]) > 0 and "200:" in r[7] and "503" not in r[7]
        p99_ms, rps, clients = float(r[4]), float(r[2]), int(r[0])
        # the ratio is computed before rounding: allow the printed columns' rounding (0.5 ms, 0.05 rps)
        low = (p99_ms - 0.5) / 1000 * (rps - 0.05) / clients - 0.005
        high = (p99_ms + 0.5) / 1000 * (rps + 0.05) / clients + 0.005
        assert low <= float(r[6]) <= high, r
    ranges = [line.strip("|").split("|") for line in summary.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert [int(r[0]) for r in ranges] == [1, 2] and ranges[0][4].strip() == "1.00-1.00"
    assert all(r[3].strip().endswith("of 2") for r in ranges)


def test_stream_benchmark_prints_one_stream_and_batched_streams(models) -> None:
    import json

    out = run(["service.stream_benchmark", "--model", "models/denoiser-stream.onnx", "--seconds", "1", "--streams", "4"],
              models["passthrough"])
    reports = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    alone, fast, live = reports
    assert alone["seconds_per_audio_second"] > 0 and alone["latency_ms"] == 64.0
    assert fast["streams"] == live["streams"] == 4 and not fast["realtime"] and live["realtime"]
    for r in (fast, live):
        assert r["cpu_seconds_per_audio_second_per_stream"] > 0 and r["mean_rows_per_call"] >= 1
        assert r["realtime_streams_per_core"] == int(1 / r["cpu_seconds_per_audio_second_per_stream"])
    assert fast["mean_rows_per_call"] > 1  # four streams at full speed share model calls
    assert 0 <= live["in_time_share"] <= 1 and live["lag_ms_max"] >= live["lag_ms_p99"]
    assert "streams at full speed" in out and "real-time streams at once" in out
