"""The ship rule: the candidate ships when its quality score on the same mixtures is higher."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.evaluation.ship_rule import TARGETS, main, quality_score, verdict


def report(version: str, ids: list[str], **figures: float) -> dict:
    row = {**TARGETS, **figures}
    return {"model": {"version": version}, "results": {"overall": {"model": row}},
            "per_mixture": [{"id": i} for i in ids]}


def test_quality_score_weighs_each_figure_by_its_target() -> None:
    assert quality_score(dict(TARGETS)) == pytest.approx(1.0)
    assert quality_score({**TARGETS, "pesq": TARGETS["pesq"] * 1.4}) == pytest.approx(1.1)


def test_verdict_and_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = ["test-0000", "test-0001"]
    shipped = report("old", ids, si_sdr=11.6, pesq=1.96)
    better = report("new", ids[::-1], si_sdr=12.0, pesq=2.05)  # order does not matter, the mixtures do
    worse = report("new", ids, si_sdr=11.0, pesq=1.96)
    assert verdict(shipped, better)[2] and not verdict(shipped, worse)[2]
    a, b, _ = verdict(shipped, better)
    assert b["score"] - a["score"] == pytest.approx((0.4 / 13.5 + 0.09 / 2.30) / 4)

    paths = {}
    for name, r in (("shipped", shipped), ("better", better), ("worse", worse), ("other", report("x", ["test-9999", "test-0001"]))):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(r))
    assert main([str(paths["shipped"]), str(paths["better"])]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "ship" and out[2].startswith("| shipped | old |") and out[3].startswith("| candidate | new |")
    assert main([str(paths["shipped"]), str(paths["worse"])]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "keep"
    assert main([str(paths["shipped"]), str(paths["other"])]) == 2
    assert "same mixtures" in capsys.readouterr().err
