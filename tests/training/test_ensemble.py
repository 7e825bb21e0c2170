"""The mean of several networks' waveforms, scored on the validation split (or the test split)."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.training

from tests.training.pipeline_helpers import ROOT, run, tiny_signal_run  # noqa: E402
from training.datasets import Dataset  # noqa: E402


def figures(stdout: str) -> dict[str, float]:
    words = stdout.strip().splitlines()[-1].split()
    return {k: float(v) for k, v in zip(words[::2], words[1::2])}


def test_one_network_scores_as_its_run_checked_it_and_a_run_record_is_needed(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory,
                                                                             tmp_path: Path) -> None:
    out = tiny_signal_run("band", tiny_dataset, tmp_path_factory)
    with open(out / "quality.csv") as fh:
        checked = list(csv.DictReader(fh))[-1]
    weights = out / "best-quality.weights.h5"
    alone = run("-m", "training.ensemble", "--data", str(tiny_dataset), str(weights))
    assert "the mean of 1 networks' waveforms" in alone.stdout
    scored = figures(alone.stdout)
    for key in ("si_sdr", "pesq", "stoi", "dnsmos_ovrl"):
        assert scored[key] == pytest.approx(float(checked[key]), abs=2e-4), key

    on_test = run("-m", "training.ensemble", "--data", str(tiny_dataset), "--split", "test", str(weights)).stdout
    test_mixtures = len(Dataset.open(tiny_dataset).split("test").lengths)
    assert f"on the test split ({test_mixtures} mixtures)" in on_test
    assert figures(on_test) != scored

    other = tiny_signal_run("band", tiny_dataset, tmp_path_factory, "--seed", "3") / "best-quality.weights.h5"
    both = figures(run("-m", "training.ensemble", "--data", str(tiny_dataset), str(weights), str(other)).stdout)
    assert both["si_sdr"] != scored["si_sdr"]

    shutil.copy(weights, tmp_path / "stray.weights.h5")
    proc = subprocess.run([sys.executable, "-m", "training.ensemble", "--data", str(tiny_dataset), str(tmp_path / "stray.weights.h5")],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 2 and "config.json" in proc.stderr
