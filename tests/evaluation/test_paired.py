"""Paired comparison of two evaluation reports on the same mixtures."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from training.evaluation.paired import main, paired_differences, summary


def report(version: str, si_sdrs: list[float], pesqs: list[float], ids: list[str] | None = None) -> dict:
    ids = ids or [f"test-{i:04d}" for i in range(len(si_sdrs))]
    mixtures = [{"id": key, "category": "rain" if i % 2 else "thunderstorm", "snr": f"{5 * (i % 2)} dB",
                 "scores": {"model": {"si_sdr": s, "pesq": p, "stoi": 0.8}, "noisy": {"si_sdr": 0.0}}}
                for i, (key, s, p) in enumerate(zip(ids, si_sdrs, pesqs))]
    return {"model": {"version": version}, "per_mixture": mixtures}


def test_differences_are_paired_by_mixture_id_and_grouped() -> None:
    before = report("a", [10.0, 8.0, 12.0, 9.0], [2.0, 1.5, math.nan, 1.0])
    after = report("b", [10.5, 8.0, 13.0, 9.5], [2.25, 1.5, 2.0, 1.0])
    after["per_mixture"].reverse()  # order does not matter, ids do
    groups = paired_differences(before, after)
    np.testing.assert_allclose(groups["overall"]["si_sdr"], [0.5, 0.0, 1.0, 0.5])
    np.testing.assert_allclose(groups["overall"]["pesq"], [0.25, 0.0, 0.0])  # the NaN pair is dropped
    np.testing.assert_allclose(groups["thunderstorm"]["si_sdr"], [0.5, 1.0])  # mixtures 0 and 2
    np.testing.assert_allclose(groups["5 dB"]["si_sdr"], [0.0, 0.5])
    s = summary(groups["overall"]["si_sdr"])
    assert s["mean"] == pytest.approx(0.5) and s["se"] == pytest.approx(np.std([0.5, 0.0, 1.0, 0.5], ddof=1) / 2)
    assert s["low"] == pytest.approx(0.5 - 1.96 * s["se"]) and s["high"] == pytest.approx(0.5 + 1.96 * s["se"])


def test_reports_of_different_mixtures_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(report("a", [1.0, 2.0], [1.0, 1.0])))
    b.write_text(json.dumps(report("b", [1.0, 2.0], [1.0, 1.0], ids=["test-0000", "test-0009"])))
    assert main([str(a), str(b)]) == 2
    assert "different mixtures" in capsys.readouterr().err


def test_command_prints_the_overall_interval(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(report("v1", [10.0, 8.0, 12.0, 9.0], [2.0, 1.5, 1.5, 1.0])))
    b.write_text(json.dumps(report("v2", [10.5, 8.0, 13.0, 9.5], [2.0, 1.5, 1.5, 1.0])))
    assert main([str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "v2 (after) − v1 (before)" in out
    overall = next(line for line in out.splitlines() if line.startswith("| overall |"))
    se = np.std([0.5, 0.0, 1.0, 0.5], ddof=1) / 2
    assert f"+0.500 [{0.5 - 1.96 * se:+.3f}, {0.5 + 1.96 * se:+.3f}]" in overall
    assert "+0.000 [+0.000, +0.000]" in overall  # PESQ unchanged
