"""`python -m training.evaluate` on a streaming export: it runs as a stream and is scored realigned.

A pass-through streaming model (three frames of lookahead, so its raw output lags by 1,280
samples) must score exactly like the noisy input: the stream's delay is removed before scoring.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from evaluation_fixtures import make_tiny_dataset  # noqa: E402
from tests.service.stream_helpers import make_delay_stream_model  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_a_streaming_passthrough_scores_like_the_noisy_input(shared_data: Path, tmp_path: Path) -> None:
    data = make_tiny_dataset(shared_data, tmp_path / "data", n=3)
    model = make_delay_stream_model(tmp_path / "stream.onnx", lookahead=3, kind="ones")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "training.evaluate", "--data", str(data), "--model", str(model), "--out", str(out),
           "--limit", "2", "--peers", "none", "--no-dnsmos", "--examples", "1", "--quiet"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["order"] == ["noisy", "model"]
    assert {i["name"] for i in report["model"]["io"]["inputs"]} == {"features", "valid", "state_feat"}
    for rec in report["per_mixture"]:
        noisy, model_scores = rec["scores"]["noisy"], rec["scores"]["model"]
        assert model_scores["si_sdr"] == pytest.approx(noisy["si_sdr"], abs=0.01), rec["id"]
        assert model_scores["pesq"] == pytest.approx(noisy["pesq"], abs=0.01), rec["id"]
        assert model_scores["stoi"] == pytest.approx(noisy["stoi"], abs=1e-3), rec["id"]
